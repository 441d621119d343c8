//! Tree listings: the commands a pod runs to list a mounted volume (one record per entry) and
//! to hash its regular files, the streaming readers of what they print, and a digest of a whole
//! tree. migrate-pv compares two listings to prove a copy; upgrade-verify keeps a tree's digest
//! in its baseline (`record --deep`) to prove the tree did not change. No cluster code lives
//! here, so every reader is testable against real directories on the local machine.
//!
//! The pod image must provide bash, GNU findutils and GNU coreutils (the default
//! `debian:bookworm-slim` does). Roots are always passed as positional parameters (`$1`),
//! never spliced into a script.
//!
//! # Record formats
//!
//! Manifest ([`manifest_command`]): one NUL-terminated record per entry below the root, sorted
//! by path bytes (`LC_ALL=C sort -z`):
//!
//! ```text
//! <type> <mode> <uid> <gid> <size> <mtime> <nlink> <inode> <blocks> ./<path>//<target>\0
//! ```
//!
//! The fields are GNU find's `%y %m %U %G %s %T@ %n %i %b %p//%l`. A path printed by find never
//! contains `//` and never ends in `/`, so the first `//` after `./` ends the path; the rest is
//! the symlink target (empty for anything else). Targets may hold any byte but NUL.
//!
//! Checksums ([`checksum_command`]): `sha256sum -z` records, `<64 hex>  ./<path>\0`, sorted by
//! path.
//!
//! A directory named `lost+found` at the root belongs to the file system (ext4 creates it on a
//! fresh volume) and is left out of both listings. The root itself is not listed: it is a mount
//! point. Paths longer than PATH_MAX (4096 bytes) make both commands fail loudly (they stat
//! paths by name).
//!
//! # The digest
//!
//! [`digest`] hashes a tree as a faithful copy keeps it: per entry (sockets skipped: they are
//! stale once the application stops) its path, type, owner, permission bits (not for symlinks,
//! always 0777), size of regular files, mtime, symlink target and the sha256 of each regular
//! file's content. Inode numbers, link counts, allocated blocks and directory sizes depend on
//! the file system and are left out, so a volume and its verified copy digest the same.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, BufRead};

/// Bash script of [`manifest_command`]: `$1` is the root, `$2` the find format. Paths are listed
/// and sorted first, then stated in that order, so the record layout cannot disturb the sort.
const MANIFEST_SCRIPT: &str = r#"set -euo pipefail
export LC_ALL=C
cd -- "$1"
find . -mindepth 1 \( -path ./lost+found -type d -prune \) -o -print0 |
  sort -z |
  xargs -0r bash -c 'format=$1; shift; exec find "$@" -maxdepth 0 -printf "$format"' tree-stat "$2"
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

/// A record longer than this is refused: it keeps readers in constant memory even on garbage.
/// Paths printed by find may exceed PATH_MAX, so the bound is generous.
pub const MAX_RECORD: usize = 1 << 20;

/// argv listing every entry under `root` (root excluded), one record each, sorted by path.
pub fn manifest_command(root: &str) -> Vec<String> {
    bash(MANIFEST_SCRIPT, "tree-manifest", &[root, MANIFEST_FORMAT])
}

/// argv printing the sha256 of every regular file under `root`, sorted by path.
pub fn checksum_command(root: &str) -> Vec<String> {
    bash(CHECKSUM_SCRIPT, "tree-checksums", &[root])
}

/// argv running `script` with bash as `name`, the arguments as positional parameters (never
/// spliced into the script).
pub fn bash(script: &str, name: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "bash".to_string(),
        "-c".to_string(),
        script.to_string(),
        name.to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_string()));
    argv
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
    /// The listing and the checksums disagree on a regular file: the tree changed while it
    /// was listed.
    #[error("{path} changed while the tree was listed: list it again once nothing writes to it")]
    Changed { path: String },
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
pub struct Order {
    previous: Option<Vec<u8>>,
}

impl Order {
    pub fn check(&mut self, record: u64, path: &[u8]) -> Result<(), TreeError> {
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
pub trait Keyed {
    /// The path the item sorts by.
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
pub fn mtime_key(t: &str) -> &str {
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

/// A tree's digest, with the regular files and bytes it counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeDigest {
    /// sha256 (hex) of the tree (see the module documentation).
    pub sha256: String,
    /// Regular files.
    pub files: u64,
    /// Their apparent sizes, each path counted.
    pub bytes: u64,
}

/// Digests a tree from the outputs of [`manifest_command`] and [`checksum_command`] taken of
/// the same root, one after the other. A regular file listed by one and not the other means the
/// tree changed in between: [`TreeError::Changed`].
pub fn digest<A: BufRead, B: BufRead>(manifest: A, sums: B) -> Result<TreeDigest, TreeError> {
    let mut hasher = Sha256::new();
    let (mut files, mut bytes) = (0, 0);
    let mut sums = checksums(sums);
    for entry in entries(manifest) {
        let e = entry?;
        if e.kind == Kind::Socket {
            continue;
        }
        let sum = if e.kind == Kind::File {
            files += 1;
            bytes += e.size;
            match sums.next().transpose()? {
                Some((path, sum)) if path == e.path => sum,
                Some((path, _)) => {
                    return Err(TreeError::Changed {
                        path: escape_path(&path),
                    });
                }
                None => {
                    return Err(TreeError::Changed {
                        path: escape_path(&e.path),
                    });
                }
            }
        } else {
            String::new()
        };
        let mode = if e.kind == Kind::Symlink { 0 } else { e.mode };
        let size = if e.kind == Kind::File { e.size } else { 0 };
        hasher.update(format!(
            "{} {mode:o} {} {} {size} {} ",
            e.kind,
            e.uid,
            e.gid,
            mtime_key(&e.mtime)
        ));
        hasher.update(&e.path);
        hasher.update([0]);
        hasher.update(e.target.as_deref().unwrap_or_default());
        hasher.update([0]);
        hasher.update(sum);
        hasher.update(b"\n");
    }
    if let Some(extra) = sums.next().transpose()? {
        return Err(TreeError::Changed {
            path: escape_path(&extra.0),
        });
    }
    Ok(TreeDigest {
        sha256: format!("{:x}", hasher.finalize()),
        files,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[String]) -> Vec<u8> {
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn digest_of(root: &std::path::Path) -> TreeDigest {
        let root = root.to_str().expect("utf-8 path");
        let manifest = run(&manifest_command(root));
        let sums = run(&checksum_command(root));
        digest(&manifest[..], &sums[..]).expect("digests")
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("bucket/a")).expect("mkdir");
        std::fs::write(dir.path().join("bucket/a/object"), b"twelve bytes").expect("write");
        std::fs::write(dir.path().join("bucket/meta.json"), b"{}").expect("write");
        std::os::unix::fs::symlink("a/object", dir.path().join("bucket/latest")).expect("link");
        dir
    }

    #[test]
    fn a_tree_digests_the_same_until_one_file_s_bytes_change() {
        let dir = tree();
        let first = digest_of(dir.path());
        assert_eq!((first.files, first.bytes), (2, 14));
        assert_eq!(digest_of(dir.path()), first);
        let object = dir.path().join("bucket/a/object");
        let mtime = std::fs::metadata(&object)
            .and_then(|m| m.modified())
            .expect("mtime");
        // Same size, same mtime: only the content tells.
        std::fs::write(&object, b"TWELVE BYTES").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&object)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
        let changed = digest_of(dir.path());
        assert_eq!((changed.files, changed.bytes), (2, 14));
        assert_ne!(changed.sha256, first.sha256);
    }

    #[test]
    fn inode_numbers_and_link_counts_do_not_count() {
        let dir = tree();
        let root = dir.path().to_str().expect("utf-8").to_string();
        let manifest = run(&manifest_command(&root));
        let sums = run(&checksum_command(&root));
        let before = digest(&manifest[..], &sums[..]).expect("digests");
        // The same records with other inode numbers and link counts, as on a copy.
        let renumbered: Vec<u8> = manifest
            .split(|b| *b == 0)
            .filter(|r| !r.is_empty())
            .flat_map(|r| {
                let mut fields: Vec<&[u8]> = r.splitn(10, |b| *b == b' ').collect();
                fields[6] = b"7";
                fields[7] = b"999";
                let mut out = fields.join(&b' ');
                out.push(0);
                out
            })
            .collect();
        assert_eq!(digest(&renumbered[..], &sums[..]).expect("digests"), before);
    }

    #[test]
    fn a_file_listed_by_one_command_only_means_the_tree_changed() {
        let dir = tree();
        let root = dir.path().to_str().expect("utf-8").to_string();
        let manifest = run(&manifest_command(&root));
        std::fs::write(dir.path().join("bucket/new"), b"x").expect("write");
        let sums = run(&checksum_command(&root));
        let err = digest(&manifest[..], &sums[..]).unwrap_err();
        assert!(
            matches!(err, TreeError::Changed { ref path } if path == "bucket/new"),
            "{err}"
        );
    }
}
