//! File-tree copy and proof: the commands the migration pod runs to copy and measure (the
//! archive that carries the copy is [`archive`]'s), and the comparison of two listings. The listing and hashing commands and their readers live in
//! [`upgrade_shared::tree`] (re-exported here), where upgrade-verify digests trees with them.
//! No cluster code lives here, so every decision is testable against real directories on the
//! local machine.
//!
//! The pod image must provide bash, GNU tar, GNU findutils and GNU coreutils (the default
//! `debian:bookworm-slim` does). Roots are always passed as positional parameters (`$1`, `$2`),
//! never spliced into a script.
//!
//! # What is compared
//!
//! Per entry present on both sides: type; owner (numeric uid:gid, symlinks included, tar uses
//! `lchown`); permission bits including setuid/setgid/sticky (not for symlinks, whose mode is
//! always 0777 on Linux); size of regular files; mtime of every kind, symlinks and directories
//! included (GNU tar restores both, with nanoseconds in the POSIX format); symlink targets;
//! hard-link groups (as groups of paths, since inode numbers differ between volumes); and
//! sparse files that became dense (see [`SPARSE_SLACK`]). Entries on one side only are reported
//! as missing or extra.
//!
//! Deliberately not compared: atime and ctime (no copy can keep ctime, and the archive carries
//! neither: see [`archive`]); directory sizes and link
//! counts (they depend on the file system); device numbers of device nodes (find cannot print
//! them); xattrs, ACLs and file capabilities (not copied either); sockets, which tar cannot
//! archive and which are stale once the application is stopped (skipped on both sides);
//! a directory named `lost+found` at the root, which belongs to the file system (ext4 creates it
//! on a fresh destination even when the source has none): it is neither copied nor listed.
//!
//! Paths longer than PATH_MAX (4096 bytes) make the listing and hashing commands fail loudly
//! (they stat paths by name); tar copies them.
//!
//! The root itself is not listed: both roots are mount points. Its mode, owner and mtime are
//! still copied, by the `.` member of the archive, and the integration tests check that.

pub mod archive;

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;

pub use upgrade_shared::tree::{
    Entry, EntryReader, Keyed, Kind, MAX_RECORD, Order, TreeError, checksum_command, checksums,
    entries, escape_path, manifest_command,
};
use upgrade_shared::tree::{bash, mtime_key};

pub use archive::{
    copy_and_digest_command, copy_command, digest_command, digest_line, is_report_line,
    pack_and_digest_command, pack_command, progress_line, unpack_command,
};

/// Bash script of [`used_command`].
const USED_SCRIPT: &str = r#"set -euo pipefail
used=$(du -sxB1 -- "$1")
printf '%s\n' "${used%%$'\t'*}"
"#;

/// Bash script of [`avail_command`].
const AVAIL_SCRIPT: &str = r#"set -euo pipefail
avail=$(df -B1 --output=avail -- "$1")
avail=${avail##*$'\n'}
printf '%s\n' "${avail// /}"
"#;

/// Bash script of [`space_command`]: `$1` is the source, `$2` the destination.
const SPACE_SCRIPT: &str = r#"set -euo pipefail
used=$(du -sxB1 -- "$1")
avail=$(df -B1 --output=avail -- "$2")
avail=${avail##*$'\n'}
printf '%s %s\n' "${used%%$'\t'*}" "${avail// /}"
"#;

/// A sparse source file counts as "became dense" when its destination allocation is more than
/// twice the source's and larger by more than this many bytes. The slack absorbs block-size and
/// preallocation differences between file systems; a 1 GiB hole filled with zeros exceeds it
/// by far. Only files that are sparse in the source (allocated bytes below size) are checked.
pub const SPARSE_SLACK: u64 = 64 * 1024;

/// At most this many differences are kept; the rest are only counted.
pub const MAX_DIFFERENCES: usize = 100;

/// argv printing the bytes `source` uses.
pub fn used_command(source: &str) -> Vec<String> {
    bash(USED_SCRIPT, "migrate-pv-used", &[source])
}

/// argv printing the bytes available in `dest`.
pub fn avail_command(dest: &str) -> Vec<String> {
    bash(AVAIL_SCRIPT, "migrate-pv-avail", &[dest])
}

/// argv printing `<bytes used by source> <bytes available in dest>`.
pub fn space_command(source: &str, dest: &str) -> Vec<String> {
    bash(SPACE_SCRIPT, "migrate-pv-space", &[source, dest])
}

/// Reads the output of [`space_command`].
pub fn parse_space(out: &str) -> Result<(u64, u64), TreeError> {
    let bad = || TreeError::Space {
        output: out.to_string(),
    };
    let mut words = out.split_whitespace();
    let used = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let avail = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    match words.next() {
        Some(_) => Err(bad()),
        None => Ok((used, avail)),
    }
}

/// One way in which the destination differs from the source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// Path relative to the roots, escaped for display (see [`escape_path`]).
    pub path: String,
    /// What differs, source value first: `mode 0644 → 0600`, `missing in destination`, …
    pub what: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// Result of comparing the two sides. Counts describe the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of regular files, each hard-linked inode counted once.
    pub bytes: u64,
    /// The first [`MAX_DIFFERENCES`] differences.
    pub differences: Vec<Difference>,
    /// How many more differences were found beyond those kept.
    pub more_differences: u64,
}

impl Verification {
    /// True when no difference at all was found.
    pub fn is_ok(&self) -> bool {
        self.differences.is_empty() && self.more_differences == 0
    }

    fn push(&mut self, path: &[u8], what: String) {
        if self.differences.len() < MAX_DIFFERENCES {
            self.differences.push(Difference {
                path: escape_path(path),
                what,
            });
        } else {
            self.more_differences += 1;
        }
    }

    /// Like `push`, unless a kept difference already names the path: a file missing, extra
    /// or of another type was reported by the manifest pass.
    fn push_new(&mut self, path: &[u8], what: &str) {
        let shown = escape_path(path);
        if !self.differences.iter().any(|d| d.path == shown) {
            self.push(path, what.to_string());
        }
    }
}

/// A stream checked for order, with sockets dropped when asked.
struct Sorted<I> {
    inner: I,
    record: u64,
    order: Order,
}

impl<T: Keyed, I: Iterator<Item = Result<T, TreeError>>> Sorted<I> {
    fn new(inner: I) -> Self {
        Sorted {
            inner,
            record: 0,
            order: Order::default(),
        }
    }

    fn next_where(&mut self, keep: fn(&T) -> bool) -> Result<Option<T>, TreeError> {
        loop {
            let Some(item) = self.inner.next().transpose()? else {
                return Ok(None);
            };
            self.record += 1;
            self.order.check(self.record, item.key())?;
            if keep(&item) {
                return Ok(Some(item));
            }
        }
    }
}

/// Where a merge stands: `Less` when the source's next path comes first (or the destination is
/// exhausted), `Greater` for the opposite, `None` when both streams are done.
fn position(source: Option<&Vec<u8>>, dest: Option<&Vec<u8>>) -> Option<Ordering> {
    match (source, dest) {
        (None, None) => None,
        (Some(_), None) => Some(Ordering::Less),
        (None, Some(_)) => Some(Ordering::Greater),
        (Some(s), Some(d)) => Some(s.cmp(d)),
    }
}

fn not_socket(e: &Entry) -> bool {
    e.kind != Kind::Socket
}

fn any<T>(_: &T) -> bool {
    true
}

/// Merge-compares two sorted manifests in one pass. Memory is constant except for entries with
/// more than one link, kept to compare hard-link groups at the end.
pub fn compare<A, B>(source: A, dest: B) -> Result<Verification, TreeError>
where
    A: Iterator<Item = Result<Entry, TreeError>>,
    B: Iterator<Item = Result<Entry, TreeError>>,
{
    let mut v = Verification::default();
    let mut links = Links::default();
    let (mut src, mut dst) = (Sorted::new(source), Sorted::new(dest));
    let (mut a, mut b) = (src.next_where(not_socket)?, dst.next_where(not_socket)?);
    loop {
        match position(a.as_ref().map(|e| &e.path), b.as_ref().map(|e| &e.path)) {
            None => break,
            Some(Ordering::Equal) => {
                if let (Some(s), Some(d)) = (&a, &b) {
                    links.count(s, &mut v);
                    compare_entry(s, d, &mut v);
                    links.record(s, d);
                }
                a = src.next_where(not_socket)?;
                b = dst.next_where(not_socket)?;
            }
            Some(Ordering::Less) => {
                if let Some(s) = &a {
                    links.count(s, &mut v);
                    v.push(&s.path, "missing in destination".into());
                }
                a = src.next_where(not_socket)?;
            }
            Some(Ordering::Greater) => {
                if let Some(d) = &b {
                    v.push(&d.path, "extra in destination".into());
                }
                b = dst.next_where(not_socket)?;
            }
        }
    }
    links.compare(&mut v);
    Ok(v)
}

fn compare_entry(s: &Entry, d: &Entry, v: &mut Verification) {
    if s.kind != d.kind {
        v.push(&s.path, format!("type {} → {}", s.kind, d.kind));
        return;
    }
    if (s.uid, s.gid) != (d.uid, d.gid) {
        v.push(
            &s.path,
            format!("owner {}:{} → {}:{}", s.uid, s.gid, d.uid, d.gid),
        );
    }
    if s.kind != Kind::Symlink && s.mode != d.mode {
        v.push(&s.path, format!("mode {:04o} → {:04o}", s.mode, d.mode));
    }
    if s.kind == Kind::File && s.size != d.size {
        v.push(&s.path, format!("size {} → {}", s.size, d.size));
    }
    if mtime_key(&s.mtime) != mtime_key(&d.mtime) {
        v.push(&s.path, format!("mtime {} → {}", s.mtime, d.mtime));
    }
    if s.target != d.target {
        let show = |t: &Option<Vec<u8>>| t.as_deref().map(escape_path).unwrap_or_default();
        v.push(
            &s.path,
            format!("symlink target {} → {}", show(&s.target), show(&d.target)),
        );
    }
    if s.kind == Kind::File && became_dense(s, d) {
        v.push(
            &s.path,
            format!(
                "sparse file became dense: {} → {} bytes allocated",
                s.blocks * 512,
                d.blocks * 512
            ),
        );
    }
}

fn became_dense(s: &Entry, d: &Entry) -> bool {
    let (before, after) = (s.blocks.saturating_mul(512), d.blocks.saturating_mul(512));
    before < s.size && after > before.saturating_mul(2) && after - before > SPARSE_SLACK
}

/// Hard-link bookkeeping: only entries with more than one link are kept.
#[derive(Default)]
struct Links {
    /// Paths present on both sides with more than one link on either side, with the inode on
    /// each side that has more than one link.
    rows: Vec<(Vec<u8>, Option<u64>, Option<u64>)>,
    /// Source inodes whose bytes were already counted.
    counted: HashSet<u64>,
}

impl Links {
    fn count(&mut self, s: &Entry, v: &mut Verification) {
        match s.kind {
            Kind::File => {
                v.files += 1;
                if s.nlink < 2 || self.counted.insert(s.inode) {
                    v.bytes += s.size;
                }
            }
            Kind::Dir => v.dirs += 1,
            Kind::Symlink => v.symlinks += 1,
            _ => {}
        }
    }

    fn record(&mut self, s: &Entry, d: &Entry) {
        let linked = |e: &Entry| (e.kind != Kind::Dir && e.nlink > 1).then_some(e.inode);
        let (si, di) = (linked(s), linked(d));
        if si.is_some() || di.is_some() {
            self.rows.push((s.path.clone(), si, di));
        }
    }

    /// Reports every path whose fellow links (among paths present on both sides) differ.
    fn compare(self, v: &mut Verification) {
        let mut src: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut dst: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, (_, si, di)) in self.rows.iter().enumerate() {
            if let Some(si) = si {
                src.entry(*si).or_default().push(i);
            }
            if let Some(di) = di {
                dst.entry(*di).or_default().push(i);
            }
        }
        let mut same: HashMap<(Option<u64>, Option<u64>), bool> = HashMap::new();
        for (i, (path, si, di)) in self.rows.iter().enumerate() {
            let (sg, dg) = (group(&src, *si), group(&dst, *di));
            let alone = |g: &[usize]| g.len() < 2;
            if *same
                .entry((*si, *di))
                .or_insert_with(|| sg == dg || (alone(sg) && alone(dg)))
            {
                continue;
            }
            let names = |from: &[usize], not_in: &[usize]| -> Vec<&[u8]> {
                from.iter()
                    .filter(|j| **j != i && !not_in.contains(j))
                    .map(|j| self.rows[*j].0.as_slice())
                    .collect()
            };
            let mut what = Vec::new();
            for (only, side) in [(names(sg, dg), "source"), (names(dg, sg), "destination")] {
                if !only.is_empty() {
                    what.push(format!(
                        "shares an inode with {} in the {side} only",
                        list(&only)
                    ));
                }
            }
            v.push(path, format!("hard links differ: {}", what.join("; ")));
        }
    }
}

/// Rows sharing `inode` on one side; none when the entry has a single link there.
fn group(groups: &HashMap<u64, Vec<usize>>, inode: Option<u64>) -> &[usize] {
    inode
        .and_then(|n| groups.get(&n))
        .map_or(&[], Vec::as_slice)
}

/// Up to three escaped paths, then how many more.
fn list(paths: &[&[u8]]) -> String {
    let mut shown: Vec<String> = paths.iter().take(3).map(|p| escape_path(p)).collect();
    if paths.len() > 3 {
        shown.push(format!("{} more", paths.len() - 3));
    }
    shown.join(", ")
}

/// Merge-compares two sorted checksum streams, adding `content differs (sha256)`, missing and
/// extra files to `into`. A missing or extra file is not repeated when a kept difference already
/// names its path (found by [`compare`]: missing, extra, or no longer a regular file).
pub fn compare_checksums<A, B>(source: A, dest: B, into: &mut Verification) -> Result<(), TreeError>
where
    A: Iterator<Item = Result<(Vec<u8>, String), TreeError>>,
    B: Iterator<Item = Result<(Vec<u8>, String), TreeError>>,
{
    let (mut src, mut dst) = (Sorted::new(source), Sorted::new(dest));
    let (mut a, mut b) = (src.next_where(any)?, dst.next_where(any)?);
    loop {
        match position(a.as_ref().map(|c| &c.0), b.as_ref().map(|c| &c.0)) {
            None => return Ok(()),
            Some(Ordering::Equal) => {
                if let (Some(s), Some(d)) = (&a, &b)
                    && !s.1.eq_ignore_ascii_case(&d.1)
                {
                    into.push(&s.0, "content differs (sha256)".into());
                }
                a = src.next_where(any)?;
                b = dst.next_where(any)?;
            }
            Some(Ordering::Less) => {
                if let Some(s) = &a {
                    into.push_new(&s.0, "missing in destination");
                }
                a = src.next_where(any)?;
            }
            Some(Ordering::Greater) => {
                if let Some(d) = &b {
                    into.push_new(&d.0, "extra in destination");
                }
                b = dst.next_where(any)?;
            }
        }
    }
}
