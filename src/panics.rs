//! The text of a caught panic, and the mark of a panic someone is about to catch. A family
//! that shields callers from a third-party engine's panics (redb's) and the harness's `panic`
//! check both report it; it lives here, outside both, so that no family depends on the
//! harness.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

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

thread_local! {
    /// How many [`catch`] calls the current thread is inside.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// Counts one [`catch`] on this thread for as long as it lives (also while a panic unwinds).
struct Catching;

impl Catching {
    fn enter() -> Catching {
        CATCHING.with(|depth| depth.set(depth.get().saturating_add(1)));
        Catching
    }
}

impl Drop for Catching {
    fn drop(&mut self) {
        CATCHING.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// Runs `body` and catches its panic (unwind safety is asserted, as every caller reports
/// the panic and stops using what it touched). While `body` runs, [`caught_here`] is true
/// on this thread, so a panic hook can tell a panic this call will catch and report from
/// one that ends the program.
pub fn catch<T>(body: impl FnOnce() -> T) -> std::thread::Result<T> {
    let _counted = Catching::enter();
    catch_unwind(AssertUnwindSafe(body))
}

/// Whether the current thread is inside [`catch`]: a panic raised now is caught by it (and
/// reported by its caller) rather than ending the thread. False on a thread that never
/// called it, and again once every call has returned, whether or not its body panicked.
pub fn caught_here() -> bool {
    CATCHING.with(|depth| depth.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records, when dropped, whether the panic it is dropped in is caught.
    struct Probe<'a>(&'a Cell<Option<bool>>);

    impl Drop for Probe<'_> {
        fn drop(&mut self) {
            self.0.set(Some(caught_here()));
        }
    }

    #[test]
    fn only_the_inside_of_a_catch_counts() {
        assert!(!caught_here());
        let inside = catch(caught_here).expect("no panic");
        assert!(inside);
        assert!(!caught_here());
        let nested = catch(|| catch(caught_here).expect("no panic") && caught_here());
        assert_eq!(nested.ok(), Some(true));
        assert!(!caught_here());
    }

    #[test]
    fn a_panic_is_marked_while_it_unwinds_and_cleared_after() {
        let seen = Cell::new(None);
        let caught = catch(|| {
            let _probe = Probe(&seen);
            panic!("planted");
        });
        assert_eq!(text(&caught.expect_err("it panicked")), "planted");
        assert_eq!(seen.get(), Some(true), "unwinding inside catch");
        assert!(!caught_here(), "the count is back to zero after a panic");
    }

    #[test]
    fn another_thread_is_not_marked() {
        let elsewhere = catch(|| std::thread::spawn(caught_here).join().expect("joined"));
        assert_eq!(elsewhere.ok(), Some(false));
    }
}
