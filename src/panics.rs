//! The text of a caught panic. A family that shields callers from a third-party engine's
//! panics (redb's) and the harness's `panic` check both report it; it lives here, outside
//! both, so that no family depends on the harness.

use std::any::Any;

/// The message of a caught panic: the payload when it is a `&str` or a `String` (what
/// `panic!` gives), a fixed phrase otherwise.
pub fn text(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}
