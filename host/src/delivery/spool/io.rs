//! The spool's disk work, on the spool's own thread: the delivery core's
//! owner plans every write ([`Op`]s, in order, at explicit offsets) and never
//! waits for the disk; this thread carries them out and reports back
//! ([`Report`]) what became durable and what failed.
//!
//! **Group commit.** The thread takes every op waiting, carries them out in
//! order, then syncs once (`fdatasync` of each file written with a durable
//! write, the directory after creations and deletions the policy covers) and
//! reports the highest durable sequence number asked for. A deletion of an
//! old-generation file, a barrier and the final close first make everything
//! before them durable.
//!
//! **A failed write leaves no hole.** Writes go to an explicit offset
//! (`pwrite`); when one fails the file is cut back to that offset and the
//! segment takes no further write (its events were reported failed, so the
//! owner sends them from memory and starts a new segment). Nothing here
//! panics on an I/O error: each is reported, counted and logged by the owner.
//!
//! **The file layer is a trait** ([`SpoolFs`]) so tests can put a slow,
//! stalling or failing file system under a real spool; the daemon uses
//! [`OsFs`].

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::{StreamKey, SyncPolicy, segment};

/// One open segment file, as the spool writes it.
pub trait SpoolFile: Send {
    /// Writes all of `buf` at `offset`.
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&mut self) -> std::io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> std::io::Result<()>;
}

/// The file system under a spool directory.
pub trait SpoolFs: Send + Sync + 'static {
    /// Reads a whole segment back (at start).
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Creates `path`, which must not exist, for writing (owner-only permissions).
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn SpoolFile>>;
    /// Deletes `path`.
    fn remove(&self, path: &Path) -> std::io::Result<()>;
    /// `fsync` of the directory `dir` (makes creations and deletions durable).
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()>;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

struct OsFile(File);

impl SpoolFile for OsFile {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek as _, SeekFrom, Write as _};
            self.0.seek(SeekFrom::Start(offset))?;
            self.0.write_all(buf)
        }
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&mut self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
}

impl SpoolFs for OsFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn SpoolFile>> {
        let file = segment::options().write(true).create_new(true).open(path)?;
        Ok(Box::new(OsFile(file)))
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The events a write carried: (stream, lowest and highest sequence number).
pub type EventSpan = (StreamKey, u64, u64);

/// One planned piece of disk work.
#[derive(Debug)]
pub enum Op {
    /// Creates segment `id` holding `bytes` (its header and KEY frame).
    Create {
        /// Segment id.
        id: u64,
        /// Header and KEY frame.
        bytes: Vec<u8>,
    },
    /// Writes `bytes` at `offset` of segment `id`.
    Write {
        /// Segment id.
        id: u64,
        /// Where in the file.
        offset: u64,
        /// The frames.
        bytes: Vec<u8>,
        /// The events the frames hold, if they are events.
        events: Option<EventSpan>,
        /// Whether the write must be synced before anything after it is
        /// reported durable (the sync policy decides).
        durable: bool,
    },
    /// Deletes segment `id`.
    Remove {
        /// Segment id.
        id: u64,
    },
    /// Deletes a file of the previous generation, once everything before
    /// this op is durable.
    Retire {
        /// The file.
        path: PathBuf,
    },
    /// Reports [`Report::Durable`] with `below` once everything before this op
    /// is durable (coalesced with the other such ops of a run).
    Durable {
        /// Every event below this sequence number has been written.
        below: u64,
    },
    /// Answers once everything before this op is durable.
    Barrier {
        /// Where to answer.
        reply: tokio::sync::oneshot::Sender<()>,
    },
    /// Makes every open segment and the directory durable (as the policy
    /// allows), answers, and ends the thread.
    Close {
        /// Where to answer: the errors met, if any.
        reply: tokio::sync::oneshot::Sender<Vec<String>>,
    },
}

/// What the thread tells the owner.
#[derive(Debug)]
pub enum Report {
    /// Every event below `below` is written and durable as the policy asks.
    Durable {
        /// The watermark.
        below: u64,
    },
    /// Writing these events failed; they are not in the spool.
    EventsFailed {
        /// The events.
        span: EventSpan,
        /// The segment they were meant for (it takes no more writes).
        id: u64,
        /// What failed.
        error: String,
    },
    /// Some other disk work failed (an acknowledgement, a marker, a
    /// deletion, a sync); nothing was lost, but a crash may resend more.
    Failed {
        /// What was being done.
        what: &'static str,
        /// What failed.
        error: String,
    },
}

/// Carries out ops against a spool directory; the thread's state, and usable
/// directly (synchronously) by tests.
pub struct Writer {
    dir: PathBuf,
    fs: Arc<dyn SpoolFs>,
    policy: SyncPolicy,
    files: HashMap<u64, Box<dyn SpoolFile>>,
    /// Segments that failed a write (or their creation): no further writes.
    broken: HashSet<u64>,
    dirty: HashSet<u64>,
    dir_dirty: bool,
    pending_durable: Option<u64>,
}

impl Writer {
    /// A writer for the spool in `dir` under `policy`.
    pub fn new(dir: PathBuf, fs: Arc<dyn SpoolFs>, policy: SyncPolicy) -> Writer {
        Writer {
            dir,
            fs,
            policy,
            files: HashMap::new(),
            broken: HashSet::new(),
            dirty: HashSet::new(),
            dir_dirty: false,
            pending_durable: None,
        }
    }

    /// Carries out `ops` in order, then makes what they asked durable and
    /// reports. Returns false once a [`Op::Close`] was carried out.
    pub fn run(&mut self, ops: impl IntoIterator<Item = Op>, report: &dyn Fn(Report)) -> bool {
        for op in ops {
            match op {
                Op::Create { id, bytes } => self.create(id, &bytes, report),
                Op::Write {
                    id,
                    offset,
                    bytes,
                    events,
                    durable,
                } => self.write(id, offset, &bytes, events, durable, report),
                Op::Remove { id } => {
                    self.files.remove(&id);
                    self.dirty.remove(&id);
                    self.broken.remove(&id);
                    let path = self.dir.join(segment::file_name(id));
                    self.remove(&path, "deleting a delivered segment", report);
                    self.dir_dirty |= self.policy == SyncPolicy::Always;
                }
                Op::Retire { path } => {
                    self.flush(report);
                    self.remove(&path, "deleting a replayed segment", report);
                    self.dir_dirty |= self.policy != SyncPolicy::Never;
                }
                Op::Durable { below } => {
                    self.pending_durable = Some(self.pending_durable.unwrap_or(0).max(below));
                }
                Op::Barrier { reply } => {
                    self.flush(report);
                    let _ = reply.send(());
                }
                Op::Close { reply } => {
                    self.flush(report);
                    let errors = self.close();
                    let _ = reply.send(errors);
                    return false;
                }
            }
        }
        self.flush(report);
        true
    }

    fn create(&mut self, id: u64, bytes: &[u8], report: &dyn Fn(Report)) {
        let path = self.dir.join(segment::file_name(id));
        let made = self.fs.create_new(&path).and_then(|mut f| {
            match f.write_at(bytes, 0) {
                Ok(()) => Ok(f),
                Err(e) => {
                    // Leave no half-written header behind.
                    let _ = self.fs.remove(&path);
                    Err(e)
                }
            }
        });
        match made {
            Ok(f) => {
                self.files.insert(id, f);
                self.dir_dirty |= self.policy != SyncPolicy::Never;
                if self.policy != SyncPolicy::Never {
                    self.dirty.insert(id);
                }
            }
            Err(e) => {
                self.broken.insert(id);
                report(Report::Failed {
                    what: "creating a segment",
                    error: format!("{}: {e}", path.display()),
                });
            }
        }
    }

    fn write(
        &mut self,
        id: u64,
        offset: u64,
        bytes: &[u8],
        events: Option<EventSpan>,
        durable: bool,
        report: &dyn Fn(Report),
    ) {
        let result = match self.files.get_mut(&id) {
            _ if self.broken.contains(&id) => {
                Err("the segment takes no more writes after an earlier failure".to_string())
            }
            None => Err("the segment is not open".to_string()),
            Some(f) => match f.write_at(bytes, offset) {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Cut back whatever part of the frames reached the file.
                    let _ = f.set_len(offset);
                    Err(format!(
                        "{}: {e}",
                        self.dir.join(segment::file_name(id)).display()
                    ))
                }
            },
        };
        match result {
            Ok(()) => {
                if durable {
                    self.dirty.insert(id);
                }
            }
            Err(error) => {
                self.broken.insert(id);
                match events {
                    Some(span) => report(Report::EventsFailed { span, id, error }),
                    None => report(Report::Failed {
                        what: "writing a marker",
                        error,
                    }),
                }
            }
        }
    }

    fn remove(&self, path: &Path, what: &'static str, report: &dyn Fn(Report)) {
        match self.fs.remove(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report(Report::Failed {
                what,
                error: format!("{}: {e}", path.display()),
            }),
        }
    }

    /// Syncs what is dirty, then reports the durable watermark if one was asked for.
    fn flush(&mut self, report: &dyn Fn(Report)) {
        let mut ids: Vec<u64> = self.dirty.drain().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(f) = self.files.get_mut(&id)
                && let Err(e) = f.sync_data()
            {
                report(Report::Failed {
                    what: "fdatasync",
                    error: format!("{}: {e}", self.dir.join(segment::file_name(id)).display()),
                });
            }
        }
        if std::mem::take(&mut self.dir_dirty)
            && let Err(e) = self.fs.sync_dir(&self.dir)
        {
            report(Report::Failed {
                what: "syncing the spool directory",
                error: format!("{}: {e}", self.dir.display()),
            });
        }
        if let Some(below) = self.pending_durable.take() {
            report(Report::Durable { below });
        }
    }

    /// The final sync of a clean stop: every open segment and the directory.
    fn close(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.policy == SyncPolicy::Never {
            return errors;
        }
        let mut ids: Vec<u64> = self.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(f) = self.files.get_mut(&id)
                && let Err(e) = f.sync_data()
            {
                errors.push(format!(
                    "{}: {e}",
                    self.dir.join(segment::file_name(id)).display()
                ));
            }
        }
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            errors.push(format!("{}: {e}", self.dir.display()));
        }
        errors
    }
}

/// The handle of a running spool thread: where ops are sent.
#[derive(Debug, Clone)]
pub struct Io {
    tx: Sender<Op>,
}

impl Io {
    /// Starts the thread for the spool in `dir`; `report` is called on the
    /// thread for everything it has to say. The thread ends after
    /// [`Op::Close`], or when every handle is gone.
    pub fn spawn(
        dir: PathBuf,
        fs: Arc<dyn SpoolFs>,
        policy: SyncPolicy,
        report: Box<dyn Fn(Report) + Send>,
    ) -> std::io::Result<Io> {
        let (tx, rx) = channel();
        let writer = Writer::new(dir, fs, policy);
        std::thread::Builder::new()
            .name("cwpub-spool".into())
            .spawn(move || run(writer, &rx, &*report))?;
        Ok(Io { tx })
    }

    /// Queues `ops` (in order). False when the thread is gone.
    pub fn send(&self, ops: impl IntoIterator<Item = Op>) -> bool {
        ops.into_iter().all(|op| self.tx.send(op).is_ok())
    }
}

/// How many ops one run takes at most before it syncs.
const MAX_RUN: usize = 4_096;

fn run(mut writer: Writer, rx: &Receiver<Op>, report: &dyn Fn(Report)) {
    while let Ok(first) = rx.recv() {
        let mut ops = vec![first];
        while ops.len() < MAX_RUN {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        if !writer.run(ops, report) {
            return;
        }
    }
}
