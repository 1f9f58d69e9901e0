//! Check `single_writer`, on the simulated disk: one writer at a time.
//!
//! **What it verifies.** After every read-write (re)open of a durable instance the runner
//! makes, while the instance is open, [`second_writer`] tries a second read-write open of the
//! same location and a read-only one, through an observer: both must be refused with
//! [`StorageError::Locked`], having issued no mutating disk operation (a second writer
//! refused only after it repaired something would still have harmed the first).
//!
//! **When.** After every clean reopen and every power loss of a durable family (for a pair,
//! its primary). **What not.** It does not run two writers concurrently on threads; the lock
//! is what it tests, through one more open while the first is live.

use crate::contract::{Family, StorageError};
use crate::vfs::SimDisk;

/// With an instance of `family` open read-write at `location` on `disk`, a second
/// read-write open and a read-only open (through an observer) must both be refused with
/// [`StorageError::Locked`] without a mutating disk operation. `Err` says what happened.
pub fn second_writer(family: &dyn Family, location: &str, disk: &SimDisk) -> Result<(), String> {
    let before = disk.mutating_op_count();
    let writer = crate::panics::catch(|| family.open(location, disk.observer()).map(drop));
    let reader =
        crate::panics::catch(|| family.open_read_only(location, disk.observer()).map(drop));
    let mutating_ops = disk.mutating_op_count() - before;
    for (who, outcome) in [("a second read-write open", writer), ("a read-only open", reader)] {
        match outcome {
            Ok(Err(StorageError::Locked { .. })) => {}
            Ok(Ok(())) => {
                return Err(format!("{who} of {location} succeeded while a writer held it"))
            }
            Ok(Err(e)) => {
                return Err(format!(
                    "{who} of {location} while a writer held it failed, but not with the \
                     lock error: {e}"
                ))
            }
            Err(panic) => {
                let text = crate::panics::text(&panic);
                return Err(format!("{who} of {location} panicked: {text}"));
            }
        }
    }
    if mutating_ops > 0 {
        return Err(format!(
            "opens of {location} refused by the lock issued {mutating_ops} mutating disk \
             operation(s) first (a refused open must change nothing)"
        ));
    }
    Ok(())
}
