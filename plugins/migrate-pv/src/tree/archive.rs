//! The tar archive that carries a copy, and its digest. Every archive of a tree, the one the
//! copy streams and the one made of the finished destination to check it, is created with the
//! same options ([`create!`]), chosen so that a faithful copy archives byte for byte like its
//! source:
//!
//! - `--sort=name`: members in name order, not in the order the file system lists them;
//! - `--sparse-version=0.0`: sparse maps in extended headers under the file's own name (the
//!   1.0 and 0.1 formats rename the member `GNUSparseFile.<pid>/…`, after the tar process);
//! - `--pax-option=…delete=atime,delete=ctime`: no access or change times, which reading or
//!   writing a file changes (so they are not carried: the copy's atimes are the time of the
//!   copy), and extended header names without a process id;
//! - `--exclude=./lost+found`: the file system's own directory at the root stays out, as in
//!   the listings.
//!
//! With `--verify=checksum` the copy's sending side tees the archive into `b2sum` as it
//! streams, so the source is read once; the destination is archived again from its files once
//! they are written, by [`digest_command`], and the two BLAKE2b-512 digests are compared. Equal
//! digests mean every member's name, type, owner, mode, mtime, size, link target, sparse map and
//! content is equal; a digest of the destination never comes from the stream. Different
//! digests do not say which file differs, so then every file is hashed on both sides.
//!
//! Holes are found with SEEK_DATA/SEEK_HOLE: two file systems may map the same content into
//! different holes, which makes the digests differ though the files do not; the per-file
//! hashes then decide.

use upgrade_shared::tree::bash;

/// `tar --create` of `"$1"` onto stdout with the options every archive of a tree shares (see
/// the module documentation).
macro_rules! create {
    () => {
        r#"tar --create --file=- --directory="$1" --format=posix --numeric-owner --sort=name \
    --sparse --sparse-version=0.0 \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --exclude=./lost+found"#
    };
}

/// `tar --extract` into `$2` (or `$1` when it is the only argument): owners, modes, times and
/// links as archived; directory modes and times only once everything inside them exists.
macro_rules! extract {
    ($dir:literal) => {
        concat!(
            r#"tar --extract --file=- --directory=""#,
            $dir,
            r#"" --preserve-permissions --same-owner --numeric-owner \
    --delay-directory-restore"#
        )
    };
}

/// Progress of the sending side on stderr every 1,000 records (10 MB), and the total at the end.
macro_rules! copied {
    () => {
        r#" --totals --checkpoint=1000 --checkpoint-action='echo=migrate-pv copied %{w}T' ."#
    };
}

/// Reads `b2sum`'s line on stdin and prints the digest on stderr after [`DIGEST_MARKER`].
macro_rules! say_digest {
    () => {
        r#"b2sum | { read -r sum _; printf 'migrate-pv archive %s\n' "$sum" >&2; }"#
    };
}

/// The start of every script: stop at the first failure, of any member of a pipeline too;
/// bytewise names.
macro_rules! header {
    () => {
        "set -euo pipefail\nexport LC_ALL=C\n"
    };
}

/// Bash script of [`copy_command`]: `$1` is the source, `$2` the destination. `pipefail` makes a
/// failure of either tar fail the whole command.
const COPY_SCRIPT: &str = concat!(
    header!(),
    create!(),
    copied!(),
    " |\n  ",
    extract!("$2"),
    "\n"
);

/// Bash script of [`copy_and_digest_command`]: the archive goes through `tee` both into the
/// extracting tar and, by fd 3, into `b2sum`. Every process is a member of the pipeline, so
/// `pipefail` sees each one fail.
const COPY_DIGEST_SCRIPT: &str = concat!(
    header!(),
    "{ ",
    create!(),
    copied!(),
    " 3>&- |\n  tee /dev/fd/3 |\n  ",
    extract!("$2"),
    " 3>&- >&2\n} 3>&1 | ",
    say_digest!(),
    "\n"
);

/// Bash script of [`pack_command`]: the sending half of [`COPY_SCRIPT`], archive on stdout.
const PACK_SCRIPT: &str = concat!(header!(), create!(), copied!(), "\n");

/// Bash script of [`pack_and_digest_command`]: the archive goes to stdout (fd 4) and into
/// `b2sum` (fd 3).
const PACK_DIGEST_SCRIPT: &str = concat!(
    header!(),
    "exec 4>&1\n{ ",
    create!(),
    copied!(),
    " 3>&- 4>&- |\n  tee /dev/fd/3 >&4 4>&-\n} 3>&1 | ",
    say_digest!(),
    "\n"
);

/// Bash script of [`unpack_command`]: the receiving half of [`COPY_SCRIPT`], archive on stdin.
const UNPACK_SCRIPT: &str = concat!(header!(), extract!("$1"), "\n");

/// Bash script of [`digest_command`]: the archive of `$1` goes into `b2sum` only.
const DIGEST_SCRIPT: &str = concat!(
    header!(),
    create!(),
    r#" --checkpoint=1000 --checkpoint-action='echo=migrate-pv hashed %{w}T' . |
  "#,
    say_digest!(),
    "\n"
);

/// What the checkpoints print after tar's `tar: ` prefix, before the byte count: archived for
/// the copy, and for the digest of the destination.
const PROGRESS_MARKERS: [&str; 2] = ["migrate-pv copied ", "migrate-pv hashed "];
/// What `tar --totals` prints once the archive is complete, before the byte count.
const TOTALS_MARKER: &str = "Total bytes written: ";
/// What precedes the archive's digest on stderr.
const DIGEST_MARKER: &str = "migrate-pv archive ";

/// argv copying everything in `source` into `dest` with owners, modes, times, links, holes and
/// odd names kept. It exits non-zero when either side of the tar pipeline fails and prints
/// progress lines to stderr that [`progress_line`] reads.
pub fn copy_command(source: &str, dest: &str) -> Vec<String> {
    bash(COPY_SCRIPT, "migrate-pv-copy", &[source, dest])
}

/// [`copy_command`] that also prints the digest of the archive it copied (on stderr, read by
/// [`digest_line`]), for [`digest_command`] of the destination to match.
pub fn copy_and_digest_command(source: &str, dest: &str) -> Vec<String> {
    bash(COPY_DIGEST_SCRIPT, "migrate-pv-copy", &[source, dest])
}

/// argv writing a tar archive of `source` to stdout (the sending half of [`copy_command`],
/// for copies between pods); progress on stderr as with the copy.
pub fn pack_command(source: &str) -> Vec<String> {
    bash(PACK_SCRIPT, "migrate-pv-pack", &[source])
}

/// [`pack_command`] that also prints the digest of the archive it sent on stderr.
pub fn pack_and_digest_command(source: &str) -> Vec<String> {
    bash(PACK_DIGEST_SCRIPT, "migrate-pv-pack", &[source])
}

/// argv extracting a tar archive from stdin into `dest` (the receiving half).
pub fn unpack_command(dest: &str) -> Vec<String> {
    bash(UNPACK_SCRIPT, "migrate-pv-unpack", &[dest])
}

/// argv archiving `root` as a copy's archive and printing only the digest of it on stderr,
/// with progress lines as the copy's.
pub fn digest_command(root: &str) -> Vec<String> {
    bash(DIGEST_SCRIPT, "migrate-pv-digest", &[root])
}

/// Bytes archived so far, from one stderr line of the copy or the digest; `None` for any
/// other line.
pub fn progress_line(line: &str) -> Option<u64> {
    let line = line.trim();
    let rest = line.strip_prefix("tar: ").unwrap_or(line);
    let count = PROGRESS_MARKERS
        .iter()
        .chain([&TOTALS_MARKER])
        .find_map(|m| rest.strip_prefix(m))?;
    let digits = count.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// The archive digest (lowercase hex BLAKE2b-512) from one stderr line; `None` for any other.
pub fn digest_line(line: &str) -> Option<String> {
    let hex = line.trim().strip_prefix(DIGEST_MARKER)?;
    (hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// True for a line the copy prints about its own work (progress, totals, the digest), not one
/// that explains a failure.
pub fn is_report_line(line: &str) -> bool {
    progress_line(line).is_some() || digest_line(line).is_some()
}
