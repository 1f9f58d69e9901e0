//! Reports people read: self-contained HTML pages drawn from what the harness recorded.
//! [`timeline`] draws one replayed history's crash timeline (`qk replay --html`, and beside
//! every saved regression).

pub mod timeline;

/// `text` with the five characters HTML gives meaning to (`& < > " '`) written as entities,
/// safe inside element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_writes_every_special_character_as_an_entity() {
        assert_eq!(
            super::escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(super::escape("plain"), "plain");
    }
}
