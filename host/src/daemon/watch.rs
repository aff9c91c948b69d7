//! `cwpub run --watch`: reloads when the config file, or a guest file it
//! names, changes. The directories holding them are watched (inotify on
//! Linux: the process sleeps until the kernel reports a change), so an edit
//! in place, a rename over the file and the symlink swap a Kubernetes
//! ConfigMap volume does are all seen. Changes are debounced — a burst of
//! events ends in one check — and a reload is asked only when the content of
//! a watched file differs from what was last loaded, so one update makes
//! exactly one reload.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use super::ReloadCause;

/// How long the files must stay quiet before they are compared.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// The content of the watched files, as one digest.
fn digest(files: &[PathBuf]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::hash::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        match std::fs::read(f) {
            Ok(bytes) => bytes.hash(&mut h),
            Err(e) => e.kind().hash(&mut h),
        }
    }
    h.finish()
}

/// Watches `files` (the daemon updates the list after each reload through
/// the returned sender) and asks for a reload on `reload` when their
/// content changes from what it is now. Runs until the daemon ends.
pub async fn spawn(
    files: Vec<PathBuf>,
    reload: mpsc::UnboundedSender<ReloadCause>,
) -> anyhow::Result<watch::Sender<Vec<PathBuf>>> {
    let (events_tx, mut events) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = events_tx.send(());
        }
    })
    .map_err(|e| anyhow::anyhow!("--watch: cannot watch files: {e}"))?;
    let (list_tx, mut list) = watch::channel(files);
    let mut dirs = BTreeSet::new();
    rewatch(&mut watcher, &mut dirs, &list.borrow_and_update());
    // The content as it is when watching starts: any change from now on is seen.
    let current = list.borrow().clone();
    let mut last = tokio::task::spawn_blocking(move || digest(&current))
        .await
        .unwrap_or(0);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = events.recv() => if got.is_none() { return },
                changed = list.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = list.borrow_and_update().clone();
                    rewatch(&mut watcher, &mut dirs, &now);
                    last = tokio::task::spawn_blocking(move || digest(&now)).await.unwrap_or(last);
                    continue;
                }
            }
            // Debounce: wait until the files stay quiet.
            loop {
                match tokio::time::timeout(DEBOUNCE, events.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let now = list.borrow().clone();
            let seen = tokio::task::spawn_blocking(move || digest(&now))
                .await
                .unwrap_or(last);
            if seen != last {
                last = seen;
                if reload.send(ReloadCause::FileChanged).is_err() {
                    return;
                }
            }
        }
    });
    Ok(list_tx)
}

/// Watches the directories holding `files` (and only those), given the
/// ones watched so far in `dirs`.
fn rewatch(
    watcher: &mut notify::RecommendedWatcher,
    dirs: &mut BTreeSet<PathBuf>,
    files: &[PathBuf],
) {
    let wanted: BTreeSet<PathBuf> = files.iter().map(|f| dir_of(f)).collect();
    for gone in dirs.difference(&wanted) {
        let _ = watcher.unwatch(gone);
    }
    for new in wanted.difference(dirs) {
        if let Err(e) = watcher.watch(new, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %new.display(), error = %e, "--watch: cannot watch this directory; changes in it are not seen");
        }
    }
    *dirs = wanted;
}

/// The directory holding `file` (`.` for a bare name).
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
