//! An exclusive lock on a run directory, so that two `llm train` processes never write the
//! same run.
//!
//! The lock is the file `DIR/lock`, held with an advisory file lock (`flock` on Unix) for as
//! long as the [`RunLock`] lives; the operating system releases it when the process ends,
//! however it ends, so a killed run never leaves a stale lock. The file holds the holder's
//! process id, so a refused process can name it. The file itself stays after the run: only
//! the lock on it counts.

use crate::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside a run directory.
pub const LOCK: &str = "lock";

/// A held lock on a run directory; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock on `dir` (which must exist), or fails at once naming the process that
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(Error::Invalid(format!(
                    "{} is in use by another `llm train`{holder}; wait for it to finish or choose another --out",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(RunLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(err.contains("in use") && err.contains(&pid), "{err}");
        drop(first);
        RunLock::acquire(dir.path()).unwrap();
    }
}
