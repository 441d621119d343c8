//! File-tree copy and proof: the commands the migration pod runs (copy, listing, hashing, space)
//! and the pure readers and comparisons of what they print. No cluster code lives here, so every
//! decision is testable against real directories on the local machine.
//!
//! The pod image must provide bash, GNU tar, GNU findutils and GNU coreutils (the default
//! `debian:bookworm-slim` does). Roots are always passed as positional parameters (`$1`, `$2`),
//! never spliced into a script.
//!
//! # Record formats
//!
//! Manifest (`manifest_command`): one NUL-terminated record per entry below the root, sorted by
//! path bytes (`LC_ALL=C sort -z`):
//!
//! ```text
//! <type> <mode> <uid> <gid> <size> <mtime> <nlink> <inode> <blocks> ./<path>//<target>\0
//! ```
//!
//! The fields are GNU find's `%y %m %U %G %s %T@ %n %i %b %p//%l`. A path printed by find never
//! contains `//` and never ends in `/`, so the first `//` after `./` ends the path; the rest is
//! the symlink target (empty for anything else). Targets may hold any byte but NUL.
//!
//! Checksums (`checksum_command`): `sha256sum -z` records, `<64 hex>  ./<path>\0`, sorted by path.
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
//! Deliberately not compared: atime and ctime (no copy can keep ctime); directory sizes and link
//! counts (they depend on the file system); device numbers of device nodes (find cannot print
//! them); xattrs, ACLs and file capabilities (not copied either); sockets, which tar cannot
//! archive and which are stale once the application is stopped (skipped on both sides);
//! a directory named `lost+found` at the root, which belongs to the file system (ext4 creates it
//! on a fresh destination even when the source has none) and is left out of both listings.
//!
//! Paths longer than PATH_MAX (4096 bytes) make the listing and hashing commands fail loudly
//! (they stat paths by name); tar copies them.
//!
//! The root itself is not listed: both roots are mount points. Its mode, owner and mtime are
//! still copied, by the `.` member of the archive, and the integration tests check that.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead};

/// Bash script of [`manifest_command`]: `$1` is the root, `$2` the find format. Paths are listed
/// and sorted first, then stated in that order, so the record layout cannot disturb the sort.
const MANIFEST_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
cd -- "$1"
find . -mindepth 1 \( -path ./lost+found -type d -prune \) -o -print0 |
  sort -z |
  xargs -0r bash -c 'format=$1; shift; exec find "$@" -maxdepth 0 -printf "$format"' migrate-pv-stat "$2"
"#;

/// GNU find format of one manifest record (see the module documentation).
const MANIFEST_FORMAT: &str = "%y %m %U %G %s %T@ %n %i %b %p//%l\\0";

/// Bash script of [`checksum_command`]: `$1` is the root.
const CHECKSUM_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
cd -- "$1"
find . -mindepth 1 \( -path ./lost+found -type d -prune \) -o -type f -print0 |
  sort -z |
  xargs -0r sha256sum -z --
"#;

/// Bash script of [`copy_command`]: `$1` is the source, `$2` the destination. `pipefail` makes a
/// failure of either tar fail the whole command. The POSIX format keeps nanosecond mtimes, long
/// and non-UTF-8 names and large ids; `--delay-directory-restore` sets directory modes and times
/// only after everything inside them exists.
const COPY_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
tar --create --file=- --directory="$1" --format=posix --sparse --numeric-owner \
    --totals --checkpoint=1000 --checkpoint-action='echo=migrate-pv copied %{w}T' . |
  tar --extract --file=- --directory="$2" --preserve-permissions --same-owner --numeric-owner \
    --delay-directory-restore
"#;

/// Bash script of [`pack_command`]: the sending half of [`COPY_SCRIPT`], archive on stdout.
const PACK_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
tar --create --file=- --directory="$1" --format=posix --sparse --numeric-owner \
    --totals --checkpoint=1000 --checkpoint-action='echo=migrate-pv copied %{w}T' .
"#;

/// Bash script of [`unpack_command`]: the receiving half of [`COPY_SCRIPT`], archive on stdin.
const UNPACK_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
tar --extract --file=- --directory="$1" --preserve-permissions --same-owner --numeric-owner \
    --delay-directory-restore
"#;

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

/// What the copy's checkpoints print after tar's `tar: ` prefix, before the byte count.
const PROGRESS_MARKER: &str = "migrate-pv copied ";
/// What `tar --totals` prints once the archive is complete, before the byte count.
const TOTALS_MARKER: &str = "Total bytes written: ";

/// A record longer than this is refused: it keeps readers in constant memory even on garbage.
/// Paths printed by find may exceed PATH_MAX, so the bound is generous.
pub const MAX_RECORD: usize = 1 << 20;

/// A sparse source file counts as "became dense" when its destination allocation is more than
/// twice the source's and larger by more than this many bytes. The slack absorbs block-size and
/// preallocation differences between file systems; a 1 GiB hole filled with zeros exceeds it
/// by far. Only files that are sparse in the source (allocated bytes below size) are checked.
pub const SPARSE_SLACK: u64 = 64 * 1024;

/// At most this many differences are kept; the rest are only counted.
pub const MAX_DIFFERENCES: usize = 100;

/// argv listing every entry under `root` (root excluded), one record each, sorted by path.
pub fn manifest_command(root: &str) -> Vec<String> {
    bash(
        MANIFEST_SCRIPT,
        "migrate-pv-manifest",
        &[root, MANIFEST_FORMAT],
    )
}

/// argv printing the sha256 of every regular file under `root`, sorted by path.
pub fn checksum_command(root: &str) -> Vec<String> {
    bash(CHECKSUM_SCRIPT, "migrate-pv-checksums", &[root])
}

/// argv copying everything in `source` into `dest` with owners, modes, times, links, holes and
/// odd names kept. It exits non-zero when either side of the tar pipeline fails and prints
/// progress lines to stderr that [`progress_line`] reads.
pub fn copy_command(source: &str, dest: &str) -> Vec<String> {
    bash(COPY_SCRIPT, "migrate-pv-copy", &[source, dest])
}

/// argv writing a tar archive of `source` to stdout (the sending half of [`copy_command`],
/// for copies between pods); progress on stderr as with the copy.
pub fn pack_command(source: &str) -> Vec<String> {
    bash(PACK_SCRIPT, "migrate-pv-pack", &[source])
}

/// argv extracting a tar archive from stdin into `dest` (the receiving half).
pub fn unpack_command(dest: &str) -> Vec<String> {
    bash(UNPACK_SCRIPT, "migrate-pv-unpack", &[dest])
}

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

fn bash(script: &str, name: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "bash".to_string(),
        "-c".to_string(),
        script.to_string(),
        name.to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_string()));
    argv
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

/// Bytes copied so far, from one stderr line of [`copy_command`]; `None` for any other line.
pub fn progress_line(line: &str) -> Option<u64> {
    let line = line.trim();
    let rest = line.strip_prefix("tar: ").unwrap_or(line);
    let count = rest
        .strip_prefix(PROGRESS_MARKER)
        .or_else(|| rest.strip_prefix(TOTALS_MARKER))?;
    let digits = count.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// Type of a listed entry (find's `%y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDev,
    BlockDev,
}

impl Kind {
    fn from_letter(letter: &[u8]) -> Option<Kind> {
        Some(match letter {
            b"f" => Kind::File,
            b"d" => Kind::Dir,
            b"l" => Kind::Symlink,
            b"p" => Kind::Fifo,
            b"s" => Kind::Socket,
            b"c" => Kind::CharDev,
            b"b" => Kind::BlockDev,
            _ => return None,
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::CharDev => "character device",
            Kind::BlockDev => "block device",
        })
    }
}

/// One manifest record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the root, raw bytes, without a leading `./`.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Size in bytes as `stat` reports it.
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time as find prints `%T@`: seconds, a dot, the fraction.
    pub mtime: String,
    pub nlink: u64,
    pub inode: u64,
    /// Symlink target, raw bytes; `None` for anything but a symlink.
    pub target: Option<Vec<u8>>,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
}

/// Why a listing or a comparison could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Reading a saved command output failed.
    #[error("cannot read the listing")]
    Io(#[from] io::Error),
    /// A record does not have the expected fields (`record` counts from 1).
    #[error(
        "record {record} of the listing is malformed: {reason} (the pod image needs GNU find and coreutils)"
    )]
    Malformed { record: u64, reason: String },
    /// The output ended inside a record: the command was cut short; run it again.
    #[error("the listing ends inside record {record}: it was cut short, run it again")]
    Truncated { record: u64 },
    /// A path does not sort strictly after the one before it (duplicates included), so a
    /// one-pass comparison would be wrong.
    #[error(
        "record {record} of the listing is out of order: {path} after {previous} (listings must be sorted with LC_ALL=C sort -z)"
    )]
    OutOfOrder {
        record: u64,
        previous: String,
        path: String,
    },
    /// The space command printed something other than two byte counts.
    #[error("cannot read used and available bytes from {output:?}")]
    Space { output: String },
}

/// Outcome of a raw record read.
enum Chunk {
    End,
    Record,
    Truncated,
    TooLong,
}

/// Reads one NUL-terminated record into `buf` (without the NUL), never holding more than
/// [`MAX_RECORD`] bytes.
fn read_record<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<Chunk> {
    buf.clear();
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Chunk::End
            } else {
                Chunk::Truncated
            });
        }
        let (used, complete) = match available.iter().position(|b| *b == 0) {
            Some(i) => {
                buf.extend_from_slice(&available[..i]);
                (i + 1, true)
            }
            None => {
                buf.extend_from_slice(available);
                (available.len(), false)
            }
        };
        r.consume(used);
        if buf.len() > MAX_RECORD {
            return Ok(Chunk::TooLong);
        }
        if complete {
            return Ok(Chunk::Record);
        }
    }
}

/// Records of one stream, checked to be strictly increasing by path. Stops after an error.
struct Records<R> {
    r: R,
    buf: Vec<u8>,
    record: u64,
    order: Order,
    failed: bool,
}

impl<R: BufRead> Records<R> {
    fn new(r: R) -> Self {
        Records {
            r,
            buf: Vec::new(),
            record: 0,
            order: Order::default(),
            failed: false,
        }
    }

    fn next_with<T: Keyed>(
        &mut self,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Option<Result<T, TreeError>> {
        if self.failed {
            return None;
        }
        let result = self.read(parse).transpose();
        if matches!(result, Some(Err(_))) {
            self.failed = true;
        }
        result
    }

    fn read<T: Keyed>(
        &mut self,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Result<Option<T>, TreeError> {
        let chunk = read_record(&mut self.r, &mut self.buf)?;
        self.record += 1;
        let record = self.record;
        match chunk {
            Chunk::End => Ok(None),
            Chunk::Truncated => Err(TreeError::Truncated { record }),
            Chunk::TooLong => Err(TreeError::Malformed {
                record,
                reason: format!("longer than {MAX_RECORD} bytes"),
            }),
            Chunk::Record => {
                let item =
                    parse(&self.buf).map_err(|reason| TreeError::Malformed { record, reason })?;
                self.order.check(record, item.key())?;
                Ok(Some(item))
            }
        }
    }
}

/// Remembers the last path of a stream to refuse anything that does not sort after it.
#[derive(Default)]
struct Order {
    previous: Option<Vec<u8>>,
}

impl Order {
    fn check(&mut self, record: u64, path: &[u8]) -> Result<(), TreeError> {
        if let Some(previous) = &self.previous
            && previous.as_slice() >= path
        {
            return Err(TreeError::OutOfOrder {
                record,
                previous: escape_path(previous),
                path: escape_path(path),
            });
        }
        match &mut self.previous {
            Some(p) => {
                p.clear();
                p.extend_from_slice(path);
            }
            None => self.previous = Some(path.to_vec()),
        }
        Ok(())
    }
}

/// Something ordered by a path.
trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Entry {
    fn key(&self) -> &[u8] {
        &self.path
    }
}

impl Keyed for (Vec<u8>, String) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// Streaming reader of manifest records (constant memory).
pub struct EntryReader<R> {
    records: Records<R>,
}

impl<R: BufRead> Iterator for EntryReader<R> {
    type Item = Result<Entry, TreeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.records.next_with(parse_entry)
    }
}

/// Reads the output of [`manifest_command`].
pub fn entries<R: BufRead>(r: R) -> EntryReader<R> {
    EntryReader {
        records: Records::new(r),
    }
}

/// Streaming reader of checksum records.
struct ChecksumReader<R> {
    records: Records<R>,
}

impl<R: BufRead> Iterator for ChecksumReader<R> {
    type Item = Result<(Vec<u8>, String), TreeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.records.next_with(parse_checksum)
    }
}

/// Reads the output of [`checksum_command`]: `(path, lowercase hex sha256)` per regular file.
pub fn checksums<R: BufRead>(r: R) -> impl Iterator<Item = Result<(Vec<u8>, String), TreeError>> {
    ChecksumReader {
        records: Records::new(r),
    }
}

fn parse_entry(record: &[u8]) -> Result<Entry, String> {
    let mut fields = record.splitn(10, |b| *b == b' ');
    let mut field = |name: &str| fields.next().ok_or_else(|| format!("no {name} field"));
    let kind_letter = field("type")?;
    let kind = Kind::from_letter(kind_letter)
        .ok_or_else(|| format!("unknown type {:?}", escape_path(kind_letter)))?;
    let mode = u32::from_str_radix(text(field("mode")?, "mode")?, 8)
        .map_err(|_| "mode is not octal".to_string())?;
    if mode > 0o7777 {
        return Err(format!("mode {mode:o} has more than permission bits"));
    }
    let uid = number(field("uid")?, "uid")?;
    let gid = number(field("gid")?, "gid")?;
    let size = number(field("size")?, "size")?;
    let mtime = text(field("mtime")?, "mtime")?;
    if !is_timestamp(mtime) {
        return Err(format!("mtime {mtime:?} is not seconds.fraction"));
    }
    let mtime = mtime.to_string();
    let nlink = number(field("link count")?, "link count")?;
    let inode = number(field("inode")?, "inode")?;
    let blocks = number(field("blocks")?, "blocks")?;
    let rest = field("path")?;
    let rest = rest
        .strip_prefix(b"./")
        .ok_or("path does not start with ./")?;
    let split = rest
        .windows(2)
        .position(|w| w == b"//")
        .ok_or("no // after the path")?;
    let (path, target) = (&rest[..split], &rest[split + 2..]);
    if path.is_empty() {
        return Err("empty path".into());
    }
    let target = match (kind, target.is_empty()) {
        (Kind::Symlink, true) => return Err("symlink without a target".into()),
        (Kind::Symlink, false) => Some(target.to_vec()),
        (_, true) => None,
        (_, false) => return Err(format!("a {kind} with a link target")),
    };
    Ok(Entry {
        path: path.to_vec(),
        kind,
        size,
        mode,
        uid,
        gid,
        mtime,
        nlink,
        inode,
        target,
        blocks,
    })
}

fn parse_checksum(record: &[u8]) -> Result<(Vec<u8>, String), String> {
    let digest = record
        .get(..64)
        .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
        .ok_or("no sha256 digest")?;
    let path = match (record.get(64..66), record.get(66..)) {
        (Some(b"  " | b" *"), Some(path)) => path,
        _ => return Err("no separator after the digest".into()),
    };
    let path = path
        .strip_prefix(b"./")
        .ok_or("path does not start with ./")?;
    if path.is_empty() {
        return Err("empty path".into());
    }
    Ok((
        path.to_vec(),
        String::from_utf8_lossy(digest).to_ascii_lowercase(),
    ))
}

fn text<'a>(field: &'a [u8], name: &str) -> Result<&'a str, String> {
    std::str::from_utf8(field).map_err(|_| format!("{name} is not text"))
}

fn number<T: std::str::FromStr>(field: &[u8], name: &str) -> Result<T, String> {
    let t = text(field, name)?;
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name} {t:?} is not a number"));
    }
    t.parse()
        .map_err(|_| format!("{name} {t:?} is out of range"))
}

fn is_timestamp(t: &str) -> bool {
    let t = t.strip_prefix('-').unwrap_or(t);
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// An mtime with trailing zeros of the fraction dropped, so `1.5000000000` equals `1.5`.
fn mtime_key(t: &str) -> &str {
    match t.split_once('.') {
        Some((secs, frac)) if frac.trim_end_matches('0').is_empty() => secs,
        Some(_) => t.trim_end_matches('0'),
        None => t,
    }
}

/// A path for display: valid UTF-8 as is, backslashes and control characters escaped,
/// other bytes as `\xNN`.
pub fn escape_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
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
