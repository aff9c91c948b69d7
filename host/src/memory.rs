//! Memory the daemon hands back once it is running, and again each time a
//! guest's optimized code has compiled in the background: the heap that
//! work used (`malloc_trim`), and the pages of its own executable's code and
//! read-only data, most of which is start-up code that never runs again
//! (argument parsing, config loading, engine set-up, compiling guests). Those
//! pages stay in the kernel's page cache; what the daemon does run later is
//! mapped back by minor page faults, the first time only. Pages that were
//! ever modified (copy-on-write, e.g. relocated data) are never touched.

/// Releases start-up memory (see the module docs); a no-op where unsupported.
pub(crate) fn release_startup_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by glibc's allocator;
    // it has no preconditions and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "linux")]
    drop_unmodified_executable_pages();
}

/// Drops this process's page-table entries for the read-only, never-modified
/// mappings of its executable, as `/proc/self/smaps` lists them.
#[cfg(target_os = "linux")]
fn drop_unmodified_executable_pages() {
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return;
    };
    for (start, end) in unmodified_readonly_mappings(&smaps, &exe.to_string_lossy()) {
        // SAFETY: [start, end) is a private, read-only mapping of the
        // executable file without a single modified page, so discarding its
        // page-table entries loses nothing: the next access maps the same
        // file contents again. No Rust reference covers these bytes as
        // mutable, and the mapping itself stays in place.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The address ranges of `path`'s mappings in `smaps` that are read-only
/// (`r--p` or `r-xp`) and hold no anonymous (copy-on-write) page.
#[cfg(target_os = "linux")]
fn unmodified_readonly_mappings(smaps: &str, path: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        // A mapping: `start-end perms offset dev inode   path`.
        let mut header = line.splitn(6, ' ');
        let range = header
            .next()
            .and_then(|r| r.split_once('-'))
            .and_then(|(s, e)| {
                Some((
                    usize::from_str_radix(s, 16).ok()?,
                    usize::from_str_radix(e, 16).ok()?,
                ))
            });
        if let Some(range) = range {
            let perms = header.next().unwrap_or_default();
            let mapped = header.nth(3).map(str::trim);
            current = (mapped == Some(path) && matches!(perms, "r--p" | "r-xp")).then_some(range);
        } else if let Some(kb) = line.strip_prefix("Anonymous:")
            && let Some(range) = current.take()
            && kb.trim() == "0 kB"
        {
            found.push(range);
        }
    }
    found
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::unmodified_readonly_mappings;

    #[test]
    fn only_unmodified_readonly_mappings_of_the_executable_are_chosen() {
        let smaps = "\
1000-3000 r--p 00000000 fd:01 42 /usr/bin/cwpub
Rss:                   8 kB
Anonymous:             0 kB
3000-9000 r-xp 00002000 fd:01 42 /usr/bin/cwpub
Anonymous:             0 kB
9000-a000 r--p 00008000 fd:01 42 /usr/bin/cwpub
Anonymous:             4 kB
a000-b000 rw-p 00009000 fd:01 42 /usr/bin/cwpub
Anonymous:             0 kB
c000-d000 r-xp 00000000 fd:01 77 /usr/lib/libc.so.6
Anonymous:             0 kB
e000-f000 rw-p 00000000 00:00 0
Anonymous:             4 kB
";
        assert_eq!(
            unmodified_readonly_mappings(smaps, "/usr/bin/cwpub"),
            [(0x1000, 0x3000), (0x3000, 0x9000)]
        );
    }

    #[test]
    fn the_running_process_has_some() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        assert!(!unmodified_readonly_mappings(&smaps, &exe.to_string_lossy()).is_empty());
    }
}
