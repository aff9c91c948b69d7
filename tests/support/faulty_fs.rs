//! A file layer for the spool that tests can stall, fill or break: every
//! call goes to the real file system unless a fault is armed. It records
//! writes and syncs in a shared [`Journal`] so tests can check their order
//! against what the sink sent.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use cwpub::delivery::spool::io::{OsFs, SpoolFile, SpoolFs};

use super::fake_sink::Journal;

#[derive(Debug, Default)]
struct Faults {
    /// Every write, creation and sync blocks while set.
    stalled: bool,
    /// The next writes fail with these OS errors; a tag limits one to
    /// writes whose first frame has it (2: events).
    fail_writes: Vec<(i32, Option<u8>)>,
    /// Reading a segment whose name contains this fails with EIO.
    unreadable: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    faults: Mutex<Faults>,
    unstalled: Condvar,
}

/// See the module doc.
#[derive(Clone)]
pub struct FaultyFs {
    shared: Arc<Shared>,
    journal: Journal,
}

impl FaultyFs {
    /// A file layer writing into `journal`.
    pub fn new(journal: Journal) -> FaultyFs {
        FaultyFs {
            shared: Arc::default(),
            journal,
        }
    }

    /// Every disk operation blocks from now on (a stalled volume).
    pub fn stall(&self) {
        self.shared.faults.lock().expect("faults").stalled = true;
    }

    /// The volume answers again.
    pub fn unstall(&self) {
        self.shared.faults.lock().expect("faults").stalled = false;
        self.shared.unstalled.notify_all();
    }

    /// The next writes fail with these OS errors (`libc::ENOSPC`, `libc::EIO`).
    pub fn fail_next_writes(&self, errnos: &[i32]) {
        let mut f = self.shared.faults.lock().expect("faults");
        f.fail_writes.extend(errnos.iter().map(|e| (*e, None)));
    }

    /// The next writes of events (not markers, not segment headers) fail
    /// with these OS errors.
    pub fn fail_next_event_writes(&self, errnos: &[i32]) {
        let mut f = self.shared.faults.lock().expect("faults");
        f.fail_writes.extend(errnos.iter().map(|e| (*e, Some(2))));
    }

    /// Reading any segment whose file name contains `part` fails with EIO.
    pub fn unreadable(&self, part: &str) {
        self.shared.faults.lock().expect("faults").unreadable = Some(part.to_string());
    }

    fn wait_while_stalled(&self) {
        let mut f = self.shared.faults.lock().expect("faults");
        while f.stalled {
            f = self.shared.unstalled.wait(f).expect("faults");
        }
    }

    /// The error armed for a write whose first frame has `tag`, if any.
    fn next_write_error(&self, tag: u8) -> Option<std::io::Error> {
        let mut f = self.shared.faults.lock().expect("faults");
        match f.fail_writes.first() {
            Some((errno, filter)) if filter.is_none_or(|t| t == tag) => {
                let errno = *errno;
                f.fail_writes.remove(0);
                Some(std::io::Error::from_raw_os_error(errno))
            }
            _ => None,
        }
    }
}

struct File {
    inner: Box<dyn SpoolFile>,
    fs: FaultyFs,
    name: String,
}

impl SpoolFile for File {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.fs.wait_while_stalled();
        // A frame's tag follows its length and checksum (see the spool's
        // frame format): 2 event, 3 ack, 4 sending, 5 refused.
        let tag = buf.get(8).copied().unwrap_or(0);
        if let Some(e) = self.fs.next_write_error(tag) {
            // A failed write may still leave part of the frames behind.
            let _ = self.inner.write_at(&buf[..buf.len() / 2], offset);
            return Err(e);
        }
        self.inner.write_at(buf, offset)?;
        self.fs.journal.note(format!(
            "write {} @{offset} +{} tag {tag}",
            self.name,
            buf.len()
        ));
        Ok(())
    }

    fn sync_data(&mut self) -> std::io::Result<()> {
        self.fs.wait_while_stalled();
        self.inner.sync_data()?;
        self.fs.journal.note(format!("sync {}", self.name));
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
}

impl SpoolFs for FaultyFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let unreadable = self
            .shared
            .faults
            .lock()
            .expect("faults")
            .unreadable
            .clone();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Some(part), Some(name)) = (unreadable, name)
            && name.contains(&part)
        {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        OsFs.read(path)
    }

    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn SpoolFile>> {
        self.wait_while_stalled();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Box::new(File {
            inner: OsFs.create_new(path)?,
            fs: self.clone(),
            name,
        }))
    }

    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.wait_while_stalled();
        OsFs.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.wait_while_stalled();
        OsFs.sync_dir(dir)
    }
}
