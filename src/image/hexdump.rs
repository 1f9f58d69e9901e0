//! A hex dump of an image annotated record by record (for the specification's worked
//! example and the reviewed snapshot of a small image).

use std::fmt::Write as _;

use super::format::{kind_name, DIGEST_LEN, FRAME_CRC_LEN, FRAME_HEADER_LEN, MAGIC};

const ROW: usize = 16;

fn rows(out: &mut String, image: &[u8], start: usize, end: usize, label: &str) {
    let mut offset = start;
    let mut first = true;
    while offset < end {
        let stop = (offset + ROW).min(end);
        let hex: Vec<String> = image[offset..stop].iter().map(|b| format!("{b:02x}")).collect();
        let note = if first { label } else { "" };
        let line = format!("{offset:08x}  {:<47}  {note}", hex.join(" "));
        let _ = writeln!(out, "{}", line.trim_end());
        first = false;
        offset = stop;
    }
}

/// Dumps `image` sixteen bytes a row, each part labelled: the magic, every record's frame
/// (kind, flags, body length), body and CRC, and the digest. It follows the framing only
/// (no validation), so it can show damaged images too; what cannot be framed is dumped as
/// `unframed bytes`.
pub fn annotated_hex(image: &[u8]) -> String {
    let mut out = String::new();
    let magic_end = MAGIC.len().min(image.len());
    rows(&mut out, image, 0, magic_end, "magic");
    let mut offset = magic_end;
    let mut number = 0u64;
    loop {
        let remaining = image.len() - offset;
        if remaining == 0 {
            break;
        }
        if remaining == DIGEST_LEN && number > 0 {
            rows(&mut out, image, offset, image.len(), "SHA-256 of all bytes above");
            break;
        }
        if remaining < FRAME_HEADER_LEN + FRAME_CRC_LEN {
            rows(&mut out, image, offset, image.len(), "unframed bytes");
            break;
        }
        let head = &image[offset..offset + FRAME_HEADER_LEN];
        let body_len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let body_start = offset + FRAME_HEADER_LEN;
        let Some(crc_end) =
            body_start.checked_add(body_len).and_then(|e| e.checked_add(FRAME_CRC_LEN))
        else {
            rows(&mut out, image, offset, image.len(), "unframed bytes");
            break;
        };
        if crc_end > image.len() {
            rows(&mut out, image, offset, image.len(), "unframed bytes");
            break;
        }
        let label = format!(
            "record #{number} {}: kind 0x{:02x}, flags 0x{:02x}, body_len {body_len}",
            kind_name(head[0]),
            head[0],
            head[1]
        );
        rows(&mut out, image, offset, body_start, &label);
        rows(&mut out, image, body_start, body_start + body_len, "  body");
        rows(&mut out, image, body_start + body_len, crc_end, "  crc32c");
        offset = crc_end;
        number += 1;
    }
    out
}
