//! The copy, listing and hashing commands run for real on local trees (as root, so owners can
//! be set), and the readers and comparisons are fed malformed input.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use kubectl_upgrade_migrate_pv::tree::{
    self, Difference, Entry, Kind, TreeError, Verification, checksums, compare, compare_checksums,
    entries,
};

// ---------------------------------------------------------------------------------------------
// Scaffolding

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("migrate-pv-tree-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+rwx")
            .arg(&self.0)
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run(argv: &[String]) -> Output {
    Command::new(&argv[0]).args(&argv[1..]).output().unwrap()
}

/// Runs a setup script with `$1…` bound to `args`; panics with its stderr on failure.
fn sh(script: &str, args: &[&OsStr]) {
    let out = Command::new("bash")
        .env("TZ", "UTC")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .arg("setup")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ok_stdout(argv: &[String]) -> Vec<u8> {
    let out = run(argv);
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        &argv[3..],
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn copy(src: &Path, dst: &Path) -> Output {
    let out = run(&tree::copy_command(&path(src), &path(dst)));
    assert!(
        out.status.success(),
        "copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn listing(root: &Path) -> Vec<Entry> {
    entries(&ok_stdout(&tree::manifest_command(&path(root)))[..])
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Compares manifests only.
fn verify_manifests(src: &Path, dst: &Path) -> Verification {
    let (a, b) = (
        ok_stdout(&tree::manifest_command(&path(src))),
        ok_stdout(&tree::manifest_command(&path(dst))),
    );
    compare(entries(&a[..]), entries(&b[..])).unwrap()
}

/// Compares manifests, then checksums into the same verification.
fn verify(src: &Path, dst: &Path) -> Verification {
    let mut v = verify_manifests(src, dst);
    let (a, b) = (
        ok_stdout(&tree::checksum_command(&path(src))),
        ok_stdout(&tree::checksum_command(&path(dst))),
    );
    compare_checksums(checksums(&a[..]), checksums(&b[..]), &mut v).unwrap();
    v
}

fn diff(path: &str, what: &str) -> Difference {
    Difference {
        path: path.into(),
        what: what.into(),
    }
}

/// Deterministic incompressible bytes.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

const BIG: usize = 12 << 20;
const NEWLINE_NAME: &str = "new\nline";
const UNICODE_NAME: &str = "ünïcödé-日本 ✓";
const BAD_UTF8_NAME: &[u8] = b"bad-\xff\xfe-name";

/// Builds the source tree. `full` adds a 12 MiB file and makes the sparse file 1 GiB.
fn build(root: &Path, full: bool) {
    let p = |rel: &str| root.join(rel);
    for d in [
        "data",
        "sticky",
        "setgid",
        "empty/nested",
        "with space",
        "links/sub",
        "a",
    ] {
        fs::create_dir_all(p(d)).unwrap();
    }
    fs::write(p("data/file"), "hello").unwrap();
    fs::write(p("data/exec"), "#!/bin/sh\n").unwrap();
    fs::write(p("data/setuid"), "suid").unwrap();
    fs::write(p("with space/a file"), "spaces").unwrap();
    fs::write(p(NEWLINE_NAME), "newline").unwrap();
    fs::write(p(UNICODE_NAME), "unicode").unwrap();
    fs::write(root.join(OsStr::from_bytes(BAD_UTF8_NAME)), "latin1").unwrap();
    for name in [OsStr::new(NEWLINE_NAME), OsStr::from_bytes(BAD_UTF8_NAME)] {
        fs::set_permissions(
            root.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
    }
    // Sort traps: "a b" and "a!" sort before "a/b" by bytes, "a0" after.
    for f in ["a/b", "a b", "a!", "a0"] {
        fs::write(p(f), f).unwrap();
    }
    fs::write(p("links/a"), "linked").unwrap();
    fs::hard_link(p("links/a"), p("links/b")).unwrap();
    fs::hard_link(p("links/a"), p("links/sub/c")).unwrap();
    std::os::unix::fs::symlink("data/file", p("rel")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/absolute", p("abs")).unwrap();
    std::os::unix::fs::symlink("nowhere", p("dangling")).unwrap();
    std::os::unix::fs::symlink("../data", p("a/dirlink")).unwrap();
    // A socket is left behind by a stopped database; tar skips it and so does the comparison.
    drop(std::os::unix::net::UnixListener::bind(p("sock")).unwrap());
    if full {
        fs::write(p("data/big"), noise(BIG, 0x9e37_79b9_7f4a_7c15)).unwrap();
    }
    let sparse = if full { "1G" } else { "4M" };
    sh(
        r#"cd -- "$1"
mkfifo fifo
truncate -s "$2" sparse
printf head | dd of=sparse conv=notrunc status=none
printf middle | dd of=sparse bs=1M seek=2 conv=notrunc status=none
chown 1000:1000 data/file links/a "$3" setgid
chown 999:999 data/exec sticky
chown -h 1000:1000 rel
chown 0:0 data/setuid
chmod 0600 data/file "$3"
chmod 0755 data/exec
chmod 04755 data/setuid
chmod 01777 sticky
chmod 02775 setgid
chmod 0640 fifo
find . -mindepth 1 -exec touch -h -d '2001-02-03 04:05:06.123456789' {} +
touch -d '2010-05-06 07:08:09.5' data/file
touch -h -d '1999-12-31 23:59:59' rel
touch -d '2015-01-01 00:00:00' empty
chown 999:999 .
chmod 0750 .
touch -d '2005-05-05 05:05:05.000000005' ."#,
        &[
            root.as_os_str(),
            OsStr::new(sparse),
            OsStr::new(UNICODE_NAME),
        ],
    );
}

/// A source tree and a fresh copy of it, checked to match before a test disturbs it.
fn copied(name: &str) -> (Scratch, PathBuf, PathBuf) {
    let s = Scratch::new(name);
    let (src, dst) = (s.dir("src"), s.dir("dst"));
    build(&src, false);
    copy(&src, &dst);
    let v = verify(&src, &dst);
    assert!(v.is_ok(), "{:#?}", v.differences);
    (s, src, dst)
}

fn only(v: &Verification) -> &[Difference] {
    assert_eq!(v.more_differences, 0);
    &v.differences
}

// ---------------------------------------------------------------------------------------------
// The copy, end to end

#[test]
fn copy_keeps_everything_and_verifies() {
    let s = Scratch::new("full");
    let (src, dst) = (s.dir("src"), s.dir("dst"));
    build(&src, true);
    // A fresh ext4 volume has lost+found; the source here has none.
    fs::create_dir(dst.join("lost+found")).unwrap();
    let out = copy(&src, &dst);

    let v = verify(&src, &dst);
    assert!(v.is_ok(), "{:#?}", v.differences);
    // data/file, exec, setuid, big; a file, newline, unicode, bad utf-8, a/b, a b, a!, a0,
    // links/a (+ b, sub/c), sparse.
    assert_eq!(v.files, 16);
    assert_eq!(v.dirs, 9);
    assert_eq!(v.symlinks, 4);
    let small: u64 = [5, 10, 4, 6, 7, "unicode".len(), 6, 3, 3, 2, 2, 6]
        .iter()
        .map(|n| *n as u64)
        .sum();
    assert_eq!(v.bytes, small + BIG as u64 + (1 << 30));

    // The root is not listed, but tar's "." member carries its owner, mode and mtime.
    let (sm, dm) = (fs::metadata(&src).unwrap(), fs::metadata(&dst).unwrap());
    assert_eq!((dm.uid(), dm.gid(), dm.mode() & 0o7777), (999, 999, 0o750));
    assert_eq!((dm.mtime(), dm.mtime_nsec()), (sm.mtime(), sm.mtime_nsec()));

    let by_path =
        |entries: &[Entry], p: &[u8]| entries.iter().find(|e| e.path == p).cloned().unwrap();
    let (se, de) = (listing(&src), listing(&dst));
    let setuid = by_path(&de, b"data/setuid");
    assert_eq!((setuid.mode, setuid.uid, setuid.gid), (0o4755, 0, 0));
    assert_eq!(by_path(&de, b"sticky").mode, 0o1777);
    assert_eq!(by_path(&de, b"setgid").mode, 0o2775);
    let file = by_path(&de, b"data/file");
    assert_eq!(
        (file.mode, file.uid, file.mtime.as_str()),
        (0o600, 1000, "1273129689.5000000000")
    );
    let rel = by_path(&de, b"rel");
    assert_eq!(
        (rel.kind, rel.target.as_deref(), rel.uid),
        (Kind::Symlink, Some(&b"data/file"[..]), 1000)
    );
    assert_eq!(
        rel.mtime, "946684799.0000000000",
        "symlink mtimes are restored"
    );
    assert_eq!(
        by_path(&de, b"dangling").target.as_deref(),
        Some(&b"nowhere"[..])
    );
    assert_eq!(by_path(&de, b"fifo").kind, Kind::Fifo);
    assert_eq!(
        by_path(&de, b"empty").mtime,
        "1420070400.0000000000",
        "directory mtimes are restored"
    );
    assert_eq!(by_path(&de, b"empty/nested").kind, Kind::Dir);
    assert_eq!(by_path(&de, NEWLINE_NAME.as_bytes()).size, 7);
    assert_eq!(by_path(&de, BAD_UTF8_NAME).size, 6);
    let unicode = by_path(&de, UNICODE_NAME.as_bytes());
    assert_eq!((unicode.uid, unicode.mode), (1000, 0o600));
    let links: Vec<Entry> = ["links/a", "links/b", "links/sub/c"]
        .iter()
        .map(|p| by_path(&de, p.as_bytes()))
        .collect();
    assert!(
        links
            .iter()
            .all(|e| e.nlink == 3 && e.inode == links[0].inode)
    );
    let sparse = by_path(&de, b"sparse");
    assert_eq!(sparse.size, 1 << 30);
    assert!(
        sparse.blocks * 512 <= 1 << 20,
        "sparse file allocated {} blocks",
        sparse.blocks
    );
    assert_eq!(by_path(&se, b"sock").kind, Kind::Socket);
    assert!(
        de.iter()
            .all(|e| e.path != b"sock" && e.path != b"lost+found")
    );

    // Listings are in byte order, which puts "a b" and "a!" before "a/b".
    let order: Vec<&[u8]> = se
        .iter()
        .map(|e| e.path.as_slice())
        .filter(|p| p.starts_with(b"a"))
        .collect();
    assert_eq!(
        order,
        [
            &b"a"[..],
            b"a b",
            b"a!",
            b"a/b",
            b"a/dirlink",
            b"a0",
            b"abs"
        ]
    );

    // Progress: checkpoints about every 10 MB, then tar's total.
    let progress: Vec<u64> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(tree::progress_line)
        .collect();
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(*progress.last().unwrap() >= BIG as u64, "{progress:?}");
}

#[test]
fn space_reports_source_use_and_destination_room() {
    let s = Scratch::new("space");
    let (src, dst) = (s.dir("src"), s.dir("dst"));
    fs::write(src.join("f"), noise(1 << 20, 7)).unwrap();
    let out = ok_stdout(&tree::space_command(&path(&src), &path(&dst)));
    let (used, avail) = tree::parse_space(std::str::from_utf8(&out).unwrap()).unwrap();
    assert!((1 << 20..4 << 20).contains(&used), "{used}");
    assert!(avail > 0);
}

// ---------------------------------------------------------------------------------------------
// Differences after the copy

#[test]
fn one_byte_changed_is_caught_by_checksums_only() {
    let (_s, src, dst) = copied("byte");
    fs::write(dst.join("data/file"), "hellO").unwrap();
    sh(
        r#"touch -r "$1/data/file" "$2/data/file""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert!(verify_manifests(&src, &dst).is_ok());
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("data/file", "content differs (sha256)")]
    );
}

#[test]
fn mode_change_is_reported() {
    let (_s, src, dst) = copied("mode");
    sh(r#"chmod 0640 "$1/data/file""#, &[dst.as_os_str()]);
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("data/file", "mode 0600 → 0640")]
    );
}

#[test]
fn owner_change_is_reported() {
    let (_s, src, dst) = copied("owner");
    sh(r#"chown 0:0 "$1/data/exec""#, &[dst.as_os_str()]);
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("data/exec", "owner 999:999 → 0:0")]
    );
}

#[test]
fn mtime_change_is_reported_for_files_and_directories() {
    let (_s, src, dst) = copied("mtime");
    sh(
        r#"touch -d '2020-01-01 00:00:00' "$1/empty" "$1/data/exec""#,
        &[dst.as_os_str()],
    );
    let v = verify(&src, &dst);
    assert_eq!(
        only(&v),
        [
            diff(
                "data/exec",
                "mtime 981173106.1234567890 → 1577836800.0000000000"
            ),
            diff(
                "empty",
                "mtime 1420070400.0000000000 → 1577836800.0000000000"
            ),
        ]
    );
}

#[test]
fn retargeted_symlink_is_reported() {
    let (_s, src, dst) = copied("symlink");
    sh(
        r#"ln -sfn elsewhere "$2/rel"; chown -h 1000:1000 "$2/rel"; touch -h -r "$1/rel" "$2/rel""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("rel", "symlink target data/file → elsewhere")]
    );
}

#[test]
fn broken_hard_link_is_reported() {
    let (_s, src, dst) = copied("hardlink");
    sh(
        r#"cp -p "$2/links/b" "$2/links/b.new"; mv "$2/links/b.new" "$2/links/b"; touch -r "$1/links" "$2/links""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [
            diff(
                "links/a",
                "hard links differ: shares an inode with links/b in the source only"
            ),
            diff(
                "links/b",
                "hard links differ: shares an inode with links/a, links/sub/c in the source only"
            ),
            diff(
                "links/sub/c",
                "hard links differ: shares an inode with links/b in the source only"
            ),
        ]
    );
}

#[test]
fn missing_file_is_reported_once() {
    let (_s, src, dst) = copied("missing");
    sh(
        r#"rm "$2/data/exec"; touch -r "$1/data" "$2/data""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("data/exec", "missing in destination")]
    );
}

#[test]
fn missing_directory_reports_its_contents() {
    let (_s, src, dst) = copied("missing-dir");
    sh(r#"rm -r "$1/empty""#, &[dst.as_os_str()]);
    let v = verify(&src, &dst);
    assert_eq!(
        only(&v),
        [
            diff("empty", "missing in destination"),
            diff("empty/nested", "missing in destination")
        ]
    );
}

#[test]
fn extra_file_is_reported_once() {
    let (_s, src, dst) = copied("extra");
    sh(
        r#"echo new > "$2/data/new file"; touch -r "$1/data" "$2/data""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [diff("data/new file", "extra in destination")]
    );
}

#[test]
fn truncated_file_is_reported() {
    let (_s, src, dst) = copied("truncated");
    sh(
        r#"truncate -s 2 "$2/data/file"; touch -r "$1/data/file" "$2/data/file""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [
            diff("data/file", "size 5 → 2"),
            diff("data/file", "content differs (sha256)")
        ]
    );
}

#[test]
fn sparse_file_made_dense_is_reported() {
    let (_s, src, dst) = copied("dense");
    sh(
        r#"cp --sparse=never --preserve=all "$1/sparse" "$2/sparse""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    let v = verify(&src, &dst);
    assert_eq!(v.differences.len(), 1, "{:#?}", v.differences);
    assert_eq!(v.differences[0].path, "sparse");
    assert!(
        v.differences[0]
            .what
            .starts_with("sparse file became dense: "),
        "{}",
        v.differences[0].what
    );
}

#[test]
fn type_change_and_odd_names_are_reported_escaped() {
    let (_s, src, dst) = copied("type");
    sh(
        r#"rm "$2/fifo"; : > "$2/fifo"; chmod 0640 "$2/fifo"; touch -r "$1/fifo" "$2/fifo""#,
        &[src.as_os_str(), dst.as_os_str()],
    );
    sh(
        r#"chmod 0600 "$1/$2" "$1/$3""#,
        &[
            dst.as_os_str(),
            OsStr::new(NEWLINE_NAME),
            OsStr::from_bytes(BAD_UTF8_NAME),
        ],
    );
    assert_eq!(
        only(&verify(&src, &dst)),
        [
            diff("bad-\\xff\\xfe-name", "mode 0644 → 0600"),
            diff("fifo", "type fifo → file"),
            diff("new\\nline", "mode 0644 → 0600"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The archive's digest: the source's taken as it streams, the destination's from its files

/// The digest a copy or digest command printed on stderr.
fn printed_digest(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let digests: Vec<String> = stderr.lines().filter_map(tree::digest_line).collect();
    assert_eq!(digests.len(), 1, "one digest: {stderr}");
    digests[0].clone()
}

/// Copies in one process, digesting the archive as it streams.
fn copy_digest(src: &Path, dst: &Path) -> String {
    let out = run(&tree::copy_and_digest_command(&path(src), &path(dst)));
    assert!(
        out.status.success(),
        "copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed_digest(&out)
}

/// The digest of `root` archived again from its files.
fn digest_of(root: &Path) -> String {
    let out = run(&tree::digest_command(&path(root)));
    assert!(
        out.status.success(),
        "digest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed_digest(&out)
}

#[test]
fn a_faithful_copy_archives_byte_for_byte_like_its_source() {
    let s = Scratch::new("digest");
    let (src, dst) = (s.dir("src"), s.dir("dst"));
    build(&src, true);
    fs::create_dir(dst.join("lost+found")).unwrap();
    let sent = copy_digest(&src, &dst);
    let v = verify(&src, &dst);
    assert!(v.is_ok(), "{:#?}", v.differences);
    assert_eq!(digest_of(&dst), sent, "the copy archives like the stream");
    assert_eq!(digest_of(&src), sent, "the source archives the same again");

    // Between two pods: the sending side digests what it sends, the receiving side extracts.
    let dst2 = s.dir("dst2");
    let pack_argv = tree::pack_and_digest_command(&path(&src));
    let mut pack = Command::new(&pack_argv[0])
        .args(&pack_argv[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let unpack_argv = tree::unpack_command(&path(&dst2));
    let unpack = Command::new(&unpack_argv[0])
        .args(&unpack_argv[1..])
        .stdin(pack.stdout.take().unwrap())
        .output()
        .unwrap();
    let pack = pack.wait_with_output().unwrap();
    assert!(pack.status.success() && unpack.status.success());
    assert_eq!(printed_digest(&pack), sent);
    assert_eq!(digest_of(&dst2), sent);
    let progress: Vec<u64> = String::from_utf8_lossy(&pack.stderr)
        .lines()
        .filter_map(tree::progress_line)
        .collect();
    assert!(*progress.last().unwrap() >= BIG as u64, "{progress:?}");
}

#[test]
fn anything_changed_after_the_copy_changes_the_digest() {
    let cases: [(&str, &str); 6] = [
        (
            "content",
            r#"printf 'hellO' > "$2/data/file"; touch -r "$1/data/file" "$2/data/file""#,
        ),
        ("mode", r#"chmod 0644 "$2/data/file""#),
        ("owner", r#"chown 1:1 "$2/data/exec""#),
        ("mtime", r#"touch -d '2030-01-01' "$2/empty""#),
        (
            "link",
            r#"ln -sfn elsewhere "$2/rel"; touch -h -r "$1/rel" "$2/rel""#,
        ),
        (
            "holes",
            r#"cp --sparse=never "$2/sparse" "$2/dense"; mv "$2/dense" "$2/sparse"; touch -r "$1/sparse" "$2/sparse"; chown --reference="$1/sparse" "$2/sparse"; chmod --reference="$1/sparse" "$2/sparse""#,
        ),
    ];
    for (what, change) in cases {
        let s = Scratch::new(&format!("changed-{what}"));
        let (src, dst) = (s.dir("src"), s.dir("dst"));
        build(&src, false);
        let sent = copy_digest(&src, &dst);
        assert_eq!(digest_of(&dst), sent, "{what}: before the change");
        sh(change, &[src.as_os_str(), dst.as_os_str()]);
        assert_ne!(digest_of(&dst), sent, "{what}: after the change");
        assert!(!verify(&src, &dst).is_ok(), "{what}: the files differ too");
    }
}

#[test]
fn the_copy_never_carries_lost_and_found() {
    let s = Scratch::new("lostfound");
    let (src, dst) = (s.dir("src"), s.dir("dst"));
    fs::create_dir_all(src.join("lost+found")).unwrap();
    fs::write(src.join("lost+found/#1234"), "orphan").unwrap();
    fs::create_dir_all(src.join("sub/lost+found")).unwrap();
    fs::write(src.join("sub/lost+found/kept"), "data").unwrap();
    // The destination's own, as a fresh ext4 volume has it.
    fs::create_dir(dst.join("lost+found")).unwrap();
    let sent = copy_digest(&src, &dst);
    assert!(!dst.join("lost+found/#1234").exists());
    assert!(dst.join("sub/lost+found/kept").exists(), "only the root's");
    assert_eq!(digest_of(&dst), sent);
}

#[test]
fn digest_lines_are_recognised() {
    let hex = "0a".repeat(64);
    assert_eq!(
        tree::digest_line(&format!("migrate-pv archive {hex}\n")),
        Some(hex.clone())
    );
    assert_eq!(
        tree::digest_line(&format!("migrate-pv archive {}", hex.to_uppercase())),
        Some(hex.clone())
    );
    for other in [
        "migrate-pv archive ".to_string(),
        format!("migrate-pv archive {}", &hex[..126]),
        format!("migrate-pv archive {}zz", &hex[..126]),
        format!("tar: migrate-pv archive {hex}"),
    ] {
        assert_eq!(tree::digest_line(&other), None, "{other:?}");
        assert!(!tree::is_report_line(&other), "{other:?}");
    }
    assert!(tree::is_report_line(&format!("migrate-pv archive {hex}")));
    assert!(tree::is_report_line("tar: migrate-pv hashed 10240 (10KiB)"));
    assert!(!tree::is_report_line(
        "tar: ./x: Cannot open: Permission denied"
    ));
}

// ---------------------------------------------------------------------------------------------
// Failures of the copy itself

fn tiny_source(s: &Scratch) -> PathBuf {
    let src = s.dir("src");
    fs::write(src.join("readable"), "data").unwrap();
    fs::write(src.join("secret"), "data").unwrap();
    src
}

/// Runs `argv` as root without the capabilities that bypass permission bits.
fn without_dac_override(argv: &[String]) -> Option<Output> {
    let caps = "-dac_override,-dac_read_search";
    let out = Command::new("setpriv")
        .args(["--bounding-set", caps, "--inh-caps", caps, "--"])
        .args(argv)
        .output()
        .ok()?;
    Some(out)
}

/// Both ways of copying in one pod: plain, and with the archive's digest.
fn copy_commands(src: &Path, dst: &Path) -> [Vec<String>; 2] {
    [
        tree::copy_command(&path(src), &path(dst)),
        tree::copy_and_digest_command(&path(src), &path(dst)),
    ]
}

#[test]
fn copy_fails_when_a_source_file_is_unreadable() {
    let s = Scratch::new("unreadable");
    let src = tiny_source(&s);
    fs::set_permissions(
        src.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    for i in 0..2 {
        let dst = s.dir(&format!("dst{i}"));
        let Some(out) = without_dac_override(&copy_commands(&src, &dst)[i]) else {
            eprintln!("setpriv is not available; skipped");
            return;
        };
        // The extracting tar succeeds; only pipefail turns the reading tar's failure into ours.
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("secret"));
        assert!(dst.join("readable").exists());
    }
}

#[test]
fn copy_fails_when_the_source_is_missing() {
    let s = Scratch::new("nosource");
    let dst = s.dir("dst");
    for argv in copy_commands(&s.0.join("absent"), &dst) {
        assert!(!run(&argv).status.success(), "{:?}", &argv[3..]);
    }
    let pack = run(&tree::pack_and_digest_command(&path(&s.0.join("absent"))));
    assert!(!pack.status.success());
}

#[test]
fn copy_fails_when_the_destination_is_not_writable() {
    let s = Scratch::new("readonly");
    let src = tiny_source(&s);
    for i in 0..2 {
        // A failed extraction still gives the root the source's mode at the end: a fresh
        // destination each time.
        let dst = s.dir(&format!("dst{i}"));
        fs::set_permissions(&dst, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        let Some(out) = without_dac_override(&copy_commands(&src, &dst)[i]) else {
            eprintln!("setpriv is not available; skipped");
            return;
        };
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn copy_fails_on_a_read_only_mount() {
    let s = Scratch::new("romount");
    let (src, dst) = (tiny_source(&s), s.dir("dst"));
    // A private mount namespace: the read-only tmpfs disappears with the command.
    let mut argv: Vec<String> = [
        "unshare",
        "--mount",
        "--",
        "bash",
        "-c",
        r#"mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@""#,
        "ro",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    argv.push(path(&dst));
    let probe = run(&["unshare".into(), "--mount".into(), "true".into()]);
    if !probe.status.success() {
        eprintln!("cannot create a mount namespace here; skipped");
        return;
    }
    for copy in copy_commands(&src, &dst) {
        let mut argv = argv.clone();
        argv.extend(copy);
        let out = run(&argv);
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Readers and comparisons on hand-written input

const MANIFEST: &[u8] = b"d 755 0 0 4096 1000000000.0000000000 2 10 8 ./a b//\0\
f 4755 1000 999 5 1000000000.5000000000 3 11 8 ./a b/f\nx//\0\
l 777 0 0 9 1000000000.0000000000 1 12 0 ./link//target//x\0";

fn read_all(bytes: &[u8]) -> Vec<Result<Entry, TreeError>> {
    entries(bytes).collect()
}

fn first_error(bytes: &[u8]) -> TreeError {
    read_all(bytes).into_iter().find_map(Result::err).unwrap()
}

#[test]
fn manifest_records_are_read() {
    let e: Vec<Entry> = read_all(MANIFEST)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(e.len(), 3);
    assert_eq!(
        (e[0].kind, e[0].path.as_slice(), e[0].target.as_deref()),
        (Kind::Dir, &b"a b"[..], None)
    );
    assert_eq!(
        e[1],
        Entry {
            path: b"a b/f\nx".to_vec(),
            kind: Kind::File,
            size: 5,
            mode: 0o4755,
            uid: 1000,
            gid: 999,
            mtime: "1000000000.5000000000".into(),
            nlink: 3,
            inode: 11,
            target: None,
            blocks: 8,
        }
    );
    // The first "//" ends the path; the target keeps any later ones.
    assert_eq!(e[2].target.as_deref(), Some(&b"target//x"[..]));
}

#[test]
fn truncated_manifest_is_an_error() {
    let cut = &MANIFEST[..MANIFEST.len() - 1];
    assert!(matches!(
        first_error(cut),
        TreeError::Truncated { record: 3 }
    ));
    // The records before the cut are still delivered.
    assert_eq!(read_all(cut).iter().filter(|r| r.is_ok()).count(), 2);
}

#[test]
fn malformed_manifest_records_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"f 644 x1 0 5 1.0 1 2 8 ./a//\0",
            "uid \"x1\" is not a number",
        ),
        (
            b"f 644 0 0 -5 1.0 1 2 8 ./a//\0",
            "size \"-5\" is not a number",
        ),
        (
            b"f 644 0 0 99999999999999999999 1.0 1 2 8 ./a//\0",
            "out of range",
        ),
        (b"f 648 0 0 5 1.0 1 2 8 ./a//\0", "mode is not octal"),
        (
            b"f 17777 0 0 5 1.0 1 2 8 ./a//\0",
            "more than permission bits",
        ),
        (b"f 644 0 0 5 yesterday 1 2 8 ./a//\0", "mtime"),
        (b"q 644 0 0 5 1.0 1 2 8 ./a//\0", "unknown type"),
        (b"f 644 0 0 5 1.0 1 2 8\0", "no path field"),
        (b"f 644 0 0 5 1.0 1 2 8 a//\0", "does not start with ./"),
        (b"f 644 0 0 5 1.0 1 2 8 ./a\0", "no // after the path"),
        (b"f 644 0 0 5 1.0 1 2 8 .///\0", "empty path"),
        (
            b"f 644 0 0 5 1.0 1 2 8 ./a//b\0",
            "a file with a link target",
        ),
        (b"l 777 0 0 5 1.0 1 2 8 ./a//\0", "symlink without a target"),
        (b"\0", "unknown type"),
    ];
    for (input, reason) in cases {
        match first_error(input) {
            TreeError::Malformed {
                record: 1,
                reason: r,
            } => assert!(r.contains(reason), "{r:?} lacks {reason:?}"),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }
}

#[test]
fn out_of_order_and_duplicate_paths_are_errors() {
    let unsorted = b"f 644 0 0 5 1.0 1 2 8 ./b//\0f 644 0 0 5 1.0 1 3 8 ./a//\0";
    match first_error(unsorted) {
        TreeError::OutOfOrder {
            record,
            previous,
            path,
        } => assert_eq!((record, previous.as_str(), path.as_str()), (2, "b", "a")),
        other => panic!("{other:?}"),
    }
    let twice = b"f 644 0 0 5 1.0 1 2 8 ./a//\0f 644 0 0 5 1.0 1 3 8 ./a//\0";
    assert!(matches!(
        first_error(twice),
        TreeError::OutOfOrder { record: 2, .. }
    ));
    // compare checks order too, whatever produced the entries.
    let sorted: Vec<Result<Entry, TreeError>> = read_all(MANIFEST);
    let mut reversed = read_all(MANIFEST);
    reversed.reverse();
    assert!(matches!(
        compare(sorted.into_iter(), reversed.into_iter()),
        Err(TreeError::OutOfOrder { .. })
    ));
}

#[test]
fn readers_stop_after_an_error_and_never_panic_on_any_prefix() {
    let bad = b"f 644 0 0 x 1.0 1 2 8 ./a//\0f 644 0 0 5 1.0 1 2 8 ./b//\0";
    let all = read_all(bad);
    assert_eq!(all.len(), 1);
    assert!(all[0].is_err());
    for cut in 0..=MANIFEST.len() {
        let results = read_all(&MANIFEST[..cut]);
        assert!(results.iter().filter(|r| r.is_err()).count() <= 1);
        let _ = compare(
            read_all(&MANIFEST[..cut]).into_iter(),
            read_all(MANIFEST).into_iter(),
        );
    }
    let sums = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  ./f\0";
    for cut in 0..=sums.len() {
        let _: Vec<_> = checksums(&sums[..cut]).collect();
    }
}

#[test]
fn overlong_record_is_refused() {
    let mut long = b"f 644 0 0 5 1.0 1 2 8 ./".to_vec();
    long.resize(tree::MAX_RECORD + 10, b'a');
    long.push(0);
    assert!(matches!(
        first_error(&long),
        TreeError::Malformed { record: 1, .. }
    ));
}

#[test]
fn checksum_records_are_read_and_checked() {
    let hex = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    let input = format!("{hex}  ./a\0{hex} *./b\nc\0");
    let sums: Vec<(Vec<u8>, String)> = checksums(input.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        sums,
        [
            (b"a".to_vec(), hex.to_lowercase()),
            (b"b\nc".to_vec(), hex.to_lowercase())
        ]
    );
    let cases: &[(String, &str)] = &[
        (format!("{}  ./a\0", &hex[1..]), "no sha256 digest"),
        (
            format!("{}  ./a\0", hex.replace('0', "g")),
            "no sha256 digest",
        ),
        (format!("{hex}\t./a\0"), "no separator"),
        (format!("{hex}  a\0"), "does not start with ./"),
        (format!("{hex}  ./\0"), "empty path"),
    ];
    for (input, reason) in cases {
        match checksums(input.as_bytes()).find_map(Result::err).unwrap() {
            TreeError::Malformed {
                record: 1,
                reason: r,
            } => assert!(r.contains(reason), "{r:?} lacks {reason:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    let unsorted = format!("{hex}  ./b\0{hex}  ./a\0");
    assert!(matches!(
        checksums(unsorted.as_bytes()).find_map(Result::err),
        Some(TreeError::OutOfOrder { record: 2, .. })
    ));
    assert!(matches!(
        checksums(format!("{hex}  ./a").as_bytes()).find_map(Result::err),
        Some(TreeError::Truncated { record: 1 })
    ));
}

#[test]
fn space_output_is_parsed() {
    assert_eq!(tree::parse_space("123 456\n").unwrap(), (123, 456));
    assert_eq!(
        tree::parse_space("  0   18446744073709551615 ").unwrap(),
        (0, u64::MAX)
    );
    for bad in [
        "",
        "123",
        "123 abc",
        "1 2 3",
        "-1 2",
        "du: cannot access '/source'",
    ] {
        assert!(
            matches!(tree::parse_space(bad), Err(TreeError::Space { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn progress_lines_are_recognised() {
    assert_eq!(
        tree::progress_line("tar: migrate-pv copied 10229760 (9.8MiB, 977MiB/s)"),
        Some(10_229_760)
    );
    assert_eq!(
        tree::progress_line("Total bytes written: 30013440 (29MiB, 1.1GiB/s)\n"),
        Some(30_013_440)
    );
    assert_eq!(
        tree::progress_line("tar: migrate-pv hashed 20459520 (20MiB, 1.2GiB/s)"),
        Some(20_459_520)
    );
    for other in [
        "tar: ./sock: socket ignored",
        "",
        "tar: migrate-pv copied",
        "tar: ./migrate-pv copied 5: file changed as we read it",
    ] {
        assert_eq!(tree::progress_line(other), None, "{other:?}");
    }
}

fn entry(path: &str, kind: Kind) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind,
        size: 0,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: "1.0000000000".into(),
        nlink: 1,
        inode: 0,
        target: None,
        blocks: 0,
    }
}

fn ok(v: Vec<Entry>) -> impl Iterator<Item = Result<Entry, TreeError>> {
    v.into_iter().map(Ok)
}

#[test]
fn differences_beyond_the_limit_are_counted() {
    let source: Vec<Entry> = (0..250)
        .map(|i| entry(&format!("f{i:03}"), Kind::File))
        .collect();
    let v = compare(ok(source), ok(vec![])).unwrap();
    assert_eq!(
        (v.files, v.differences.len(), v.more_differences),
        (250, tree::MAX_DIFFERENCES, 150)
    );
    assert!(!v.is_ok());
}

#[test]
fn mtime_precision_and_inode_numbers_do_not_count() {
    let mut s = entry("f", Kind::File);
    s.mtime = "5.5000000000".into();
    s.inode = 7;
    let mut d = s.clone();
    d.mtime = "5.5".into();
    d.inode = 99;
    assert!(compare(ok(vec![s.clone()]), ok(vec![d])).unwrap().is_ok());
    let mut whole = s.clone();
    whole.mtime = "5.0000000000".into();
    let mut bare = s;
    bare.mtime = "5".into();
    assert!(compare(ok(vec![whole]), ok(vec![bare])).unwrap().is_ok());
}

#[test]
fn sparse_rule_needs_a_sparse_source_and_real_growth() {
    let file = |size: u64, blocks: u64| {
        let mut e = entry("f", Kind::File);
        (e.size, e.blocks) = (size, blocks);
        e
    };
    let dense = |s: Entry, d: Entry| !compare(ok(vec![s]), ok(vec![d])).unwrap().is_ok();
    // 1 MiB sparse file with 8 KiB allocated.
    assert!(dense(file(1 << 20, 16), file(1 << 20, 2048)));
    // Growth within the slack (block size or preallocation differences) is tolerated.
    assert!(!dense(file(1 << 20, 16), file(1 << 20, 128)));
    // A dense source may grow (preallocation): never reported.
    assert!(!dense(file(4096, 8), file(4096, 1024)));
}

#[test]
fn hard_link_groups_are_compared_by_paths() {
    let linked = |path: &str, inode: u64, nlink: u64| {
        let mut e = entry(path, Kind::File);
        (e.inode, e.nlink) = (inode, nlink);
        e
    };
    // Same grouping under other inode numbers: fine.
    let v = compare(
        ok(vec![linked("a", 1, 2), linked("b", 1, 2)]),
        ok(vec![linked("a", 9, 2), linked("b", 9, 2)]),
    )
    .unwrap();
    assert!(v.is_ok());
    assert_eq!(v.bytes, 0);
    // A link to a path outside the listing (nlink 2, no partner) is not a difference.
    assert!(
        compare(ok(vec![linked("a", 1, 2)]), ok(vec![linked("a", 5, 1)]))
            .unwrap()
            .is_ok()
    );
    // Links that appear only in the destination are.
    let v = compare(
        ok(vec![linked("a", 1, 1), linked("b", 2, 1)]),
        ok(vec![linked("a", 9, 2), linked("b", 9, 2)]),
    )
    .unwrap();
    assert_eq!(
        v.differences[0].what,
        "hard links differ: shares an inode with b in the destination only"
    );
    // Regrouped: both directions named in one line.
    let v = compare(
        ok(vec![
            linked("a", 1, 2),
            linked("b", 1, 2),
            linked("c", 2, 1),
        ]),
        ok(vec![
            linked("a", 9, 2),
            linked("b", 8, 1),
            linked("c", 9, 2),
        ]),
    )
    .unwrap();
    assert_eq!(
        v.differences[0].what,
        "hard links differ: shares an inode with b in the source only; shares an inode with c in the destination only"
    );
    // Directories' link counts are not hard links.
    let mut dir = entry("d", Kind::Dir);
    dir.nlink = 5;
    assert!(
        compare(ok(vec![dir.clone()]), ok(vec![dir]))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn sockets_are_skipped_and_symlink_modes_ignored() {
    let mut link = entry("l", Kind::Symlink);
    link.target = Some(b"t".to_vec());
    let mut other_mode = link.clone();
    other_mode.mode = 0o755;
    let v = compare(
        ok(vec![link, entry("s", Kind::Socket)]),
        ok(vec![other_mode]),
    )
    .unwrap();
    assert!(v.is_ok(), "{:?}", v.differences);
    assert_eq!(v.symlinks, 1);
}
