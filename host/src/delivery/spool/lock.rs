//! The spool directory's lock: an exclusive advisory lock (`flock`) on
//! `<spool_dir>/lock`, held for the life of the process, so two cwpub
//! processes can never append to, acknowledge or replay one spool at once.
//! The kernel releases it when the process ends, however it ends (SIGKILL
//! included), so a stale lock never blocks a restart. The file holds the
//! owner's PID for the error message of the process that is refused.

use std::fs::{File, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the spool directory.
pub const LOCK_FILE: &str = "lock";

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` without waiting; the error names the owner.
    pub fn acquire(dir: &Path) -> std::io::Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = super::segment::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                let who = if owner.is_empty() || owner.len() > 20 {
                    "another process".to_string()
                } else {
                    format!("process {owner}")
                };
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "locked by {who}: two cwpub processes cannot share one spool_dir; \
                         give each its own directory"
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        write!(file, "{}", std::process::id())?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_names_the_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DirLock::acquire(dir.path()).expect("first lock");
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("locked by process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("cannot share one spool_dir"), "{msg}");
        drop(first);
        DirLock::acquire(dir.path()).expect("free again once dropped");
    }
}
