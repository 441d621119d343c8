//! The script that runs the dump in the pod, and the `kubectl-upgrade-backup: …` lines it
//! writes on stderr ([`Report`]).
//!
//! The dump program writes into a FIFO read by `tee`, which sends the bytes to the exec's
//! stdout, to the pod's own sha256 of what it sent ([`DIGEST`]: OpenSSL or `sha256sum`) and,
//! with `--to-volume`, to `PATH.partial`. `tee` writes 8 KiB at a time, and every write to
//! the exec's stdout becomes one read and one frame on the way to the client, each costing a
//! wake-up on both ends. So when the container's `dd` can copy in full blocks
//! ([`LARGE_WRITES`]), `tee` writes its stdout into one more FIFO and `dd bs=1M
//! iflag=fullblock` copies that to the exec's stdout in 1 MiB writes; without such a `dd`,
//! `tee` writes the exec's stdout itself.
//!
//! The script reports the dump program's own exit status (`wait` on its pid, not the shell's
//! or tee's), tee's, dd's (when it ran) and the pod's digests. A `dd` that failed fails the
//! dump: when it stops, tee and the dump program die of the broken pipe after it, so its
//! status is the cause and is reported before theirs.

/// Defines `digest`, the pod's sha256 of stdin with the hex digest first: OpenSSL's when the
/// container has one that gives the right answer (it uses the CPU's SHA instructions), else
/// coreutils' `sha256sum`, which does not and costs several times the CPU for the same digest.
pub const DIGEST: &str = r#"empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
if command -v openssl >/dev/null 2>&1 && [ "$(openssl dgst -sha256 -r </dev/null 2>/dev/null | cut -c1-64)" = "$empty" ]; then
  digest() { openssl dgst -sha256 -r; }
elif command -v sha256sum >/dev/null 2>&1; then
  digest() { sha256sum; }
else
  echo "kubectl-upgrade-backup: sha256sum is not in the container" >&2; exit 69
fi
"#;

/// Sets `blocks` to `1` when the container's `dd` copies its input in full 1 MiB blocks
/// (`iflag=fullblock` and `status=none`: GNU coreutils has both; BusyBox and toybox builds
/// may lack them), else to nothing. The probe copies one byte and must give back exactly
/// that byte.
pub const LARGE_WRITES: &str = r#"blocks=
if command -v dd >/dev/null 2>&1 && [ "$(printf x | dd bs=1M iflag=fullblock status=none 2>/dev/null)" = x ]; then
  blocks=1
fi
"#;

/// The script body after the client prelude, [`DIGEST`] and [`LARGE_WRITES`]: `$1` is the
/// volume path or `-`, the rest the dump program's arguments.
pub const DUMP_BODY: &str = r#"vol=$1
shift
new_cnf
mkfifo "$d/out" "$d/sum" || exit 70
[ -z "$blocks" ] || mkfifo "$d/blocks" || exit 70
digest < "$d/sum" > "$d/sha" &
s=$!
"$tool" --defaults-extra-file="$cnf" "$@" > "$d/out" &
p=$!
set -- "$d/sum"
[ "$vol" = "-" ] || set -- "$@" "$vol.partial"
if [ -n "$blocks" ]; then
  dd bs=1M iflag=fullblock status=none < "$d/blocks" &
  b=$!
  tee "$@" < "$d/out" > "$d/blocks"
else
  tee "$@" < "$d/out"
fi
t=$?
dd_exit=
if [ -n "$blocks" ]; then
  wait "$b"
  dd_exit=$?
fi
wait "$p"
rc=$?
wait "$s"
echo "kubectl-upgrade-backup: dump-exit=$rc tee-exit=$t${dd_exit:+ dd-exit=$dd_exit} sha256=$(cut -c1-64 "$d/sha")" >&2
[ "${dd_exit:-0}" -eq 0 ] || { echo "kubectl-upgrade-backup: dd exited with $dd_exit while copying the dump to the exec's stdout in the container" >&2; exit 74; }
[ "$rc" -eq 0 ] || exit "$rc"
[ "$t" -eq 0 ] || { echo "kubectl-upgrade-backup: writing the dump failed in the container" >&2; exit 74; }
if [ "$vol" != "-" ]; then
  sync
  echo "kubectl-upgrade-backup: volume-sha256=$(digest < "$vol.partial" | cut -c1-64)" >&2
fi
exit 0
"#;

/// The whole body run after the client prelude: the tools it needs, [`DIGEST`],
/// [`LARGE_WRITES`], [`DUMP_BODY`].
pub fn dump_script() -> String {
    format!(
        r#"for c in tee mkfifo cut; do
  command -v "$c" >/dev/null 2>&1 || {{ echo "kubectl-upgrade-backup: $c is not in the container" >&2; exit 69; }}
done
{DIGEST}{LARGE_WRITES}{DUMP_BODY}"#
    )
}

const MARK: &str = "kubectl-upgrade-backup: ";

/// What the pod reported on its `kubectl-upgrade-backup:` lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub dump_exit: Option<i32>,
    /// The exit status of the `dd` that copied the stream to stdout, when one did.
    pub dd_exit: Option<i32>,
    pub pod_sha256: Option<String>,
    pub volume_sha256: Option<String>,
    /// The last other stderr line (the dump program's own message).
    pub last_error: String,
}

impl Report {
    /// Reads one stderr line.
    pub fn line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix(MARK) else {
            if !line.trim().is_empty() {
                self.last_error = line.trim().to_string();
            }
            return;
        };
        let mut known = false;
        for word in rest.split_whitespace() {
            if let Some(v) = word.strip_prefix("dump-exit=") {
                self.dump_exit = v.parse().ok();
                known = true;
            } else if let Some(v) = word.strip_prefix("dd-exit=") {
                self.dd_exit = v.parse().ok();
                known = true;
            } else if let Some(v) = word.strip_prefix("sha256=") {
                self.pod_sha256 = Some(v.to_string());
                known = true;
            } else if let Some(v) = word.strip_prefix("volume-sha256=") {
                self.volume_sha256 = Some(v.to_string());
                known = true;
            }
        }
        if !known {
            self.last_error = rest.trim().to_string();
        }
    }

    /// Why the dump failed in the pod, when it did, from what was reported and the script's
    /// own exit code: a failed `dd` first (the dump program and tee die of it), then the dump
    /// program's status, then the script's.
    pub fn failure(&self, tool: &str, script_exit: i32, script_message: &str) -> Option<String> {
        if let Some(dd) = self.dd_exit.filter(|c| *c != 0) {
            return Some(format!(
                "dd exited with {dd} while copying the dump to the exec's stdout in the container"
            ));
        }
        let exit_status = self.dump_exit.unwrap_or(script_exit);
        if exit_status != 0 {
            let why = if self.last_error.is_empty() {
                script_message
            } else {
                &self.last_error
            };
            return Some(format!("{tool} exited with {exit_status}: {why}"));
        }
        (script_exit != 0).then(|| {
            format!(
                "the dump script failed with {script_exit}: {}",
                self.last_error
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_pod_report_is_read_from_marker_lines() {
        let mut r = Report::default();
        r.line(
            "mariadb-dump: Got error: 1049: \"Unknown database 'x'\" when selecting the database",
        );
        r.line("kubectl-upgrade-backup: dump-exit=2 tee-exit=0 sha256=abc");
        assert_eq!(r.dump_exit, Some(2));
        assert_eq!(r.dd_exit, None);
        assert_eq!(r.pod_sha256.as_deref(), Some("abc"));
        assert!(r.last_error.starts_with("mariadb-dump: Got error: 1049"));
        assert!(
            r.failure("mariadb-dump", 2, "")
                .unwrap()
                .starts_with("mariadb-dump exited with 2: mariadb-dump: Got error: 1049")
        );
        r.line("kubectl-upgrade-backup: volume-sha256=def");
        assert_eq!(r.volume_sha256.as_deref(), Some("def"));
        r.line("kubectl-upgrade-backup: writing the dump failed in the container");
        assert_eq!(r.last_error, "writing the dump failed in the container");
    }

    #[test]
    fn a_failed_dd_is_the_cause_before_the_dump_program_it_broke() {
        let mut r = Report::default();
        r.line("mariadb-dump: Got errno 32 on write");
        r.line("kubectl-upgrade-backup: dump-exit=2 tee-exit=141 dd-exit=137 sha256=abc");
        assert_eq!(r.dd_exit, Some(137));
        assert_eq!(
            r.failure("mariadb-dump", 74, "").as_deref(),
            Some("dd exited with 137 while copying the dump to the exec's stdout in the container")
        );
        let mut ok = Report::default();
        ok.line("kubectl-upgrade-backup: dump-exit=0 tee-exit=0 dd-exit=0 sha256=abc");
        assert_eq!(ok.failure("mariadb-dump", 0, ""), None);
        // The script failing after a clean dump is still a failure.
        ok.line("kubectl-upgrade-backup: writing the dump failed in the container");
        assert_eq!(
            ok.failure("mariadb-dump", 74, "").as_deref(),
            Some("the dump script failed with 74: writing the dump failed in the container")
        );
    }

    /// A directory of links to the named system tools, for a PATH with only those.
    fn tools(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for t in names {
            let real = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(t))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{t} is installed"));
            std::os::unix::fs::symlink(real, dir.path().join(t)).unwrap();
        }
        dir
    }

    fn executable(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs [`DIGEST`] and `digest` on "abc" with only the named tools on PATH.
    fn digest_with(names: &[&str], fake_openssl: Option<&str>) -> std::process::Output {
        let dir = tools(names);
        if let Some(out) = fake_openssl {
            executable(
                &dir.path().join("openssl"),
                &format!("#!/bin/sh\ncat >/dev/null\necho '{out}'\n"),
            );
        }
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{DIGEST}printf abc | digest | cut -c1-64"))
            .env("PATH", dir.path())
            .output()
            .unwrap()
    }

    #[test]
    fn the_pod_digest_is_sha256_from_openssl_or_sha256sum_and_a_wrong_openssl_is_passed_over() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let stdout =
            |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
        let openssl_installed = ["/usr/bin/openssl", "/bin/openssl"]
            .iter()
            .any(|p| Path::new(p).exists());
        if openssl_installed {
            let o = digest_with(&["openssl", "cut"], None);
            assert_eq!(stdout(&o), abc, "openssl: {o:?}");
        }
        let o = digest_with(&["sha256sum", "cut"], None);
        assert_eq!(stdout(&o), abc, "sha256sum: {o:?}");
        // An openssl whose digest is not sha256 (another build, another output) is not used.
        let o = digest_with(&["sha256sum", "cut"], Some("0123 *stdin"));
        assert_eq!(stdout(&o), abc, "fallback: {o:?}");
        let o = digest_with(&["cut"], None);
        assert_eq!(o.status.code(), Some(69));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("sha256sum is not in the container"),
            "{o:?}"
        );
    }

    /// What the fake dump program writes: a little over 3 MiB, not a whole number of blocks.
    const DUMPED: usize = 3 * 1024 * 1024 + 4321;

    /// The bytes the fake dump program writes.
    fn dumped() -> Vec<u8> {
        b"INSERT INTO t VALUES (1);\n"
            .iter()
            .copied()
            .cycle()
            .take(DUMPED)
            .collect()
    }

    /// Runs the whole dump script under the client prelude, as the plugin does, with a fake
    /// dump program, only the tools it needs on PATH, `dd` as `dd` says (`None`: no `dd`;
    /// `Some("")`: the real one; else the text of a fake) and `vol` as the volume path.
    fn dump_with(dd: Option<&str>, vol: &str) -> (std::process::Output, tempfile::TempDir) {
        let dir = tools(&["mktemp", "rm", "mkfifo", "tee", "cut", "sha256sum", "sync"]);
        match dd {
            None => {}
            Some("") => std::os::unix::fs::symlink(
                ["/usr/bin/dd", "/bin/dd"]
                    .into_iter()
                    .find(|p| Path::new(p).exists())
                    .expect("dd is installed"),
                dir.path().join("dd"),
            )
            .unwrap(),
            Some(fake) => executable(&dir.path().join("dd"), fake),
        }
        let tool = dir.path().join("fake-dump");
        // Reads its option FIFO as the real one does, then writes DUMPED bytes.
        executable(
            &tool,
            &format!(
                "#!/bin/sh\nPATH=/usr/bin:/bin\ncat \"${{1#--defaults-extra-file=}}\" >/dev/null\n\
                 yes 'INSERT INTO t VALUES (1);' | head -c {DUMPED}\n"
            ),
        );
        let argv = upgrade_shared::mysql::script_argv(
            &dump_script(),
            tool.to_str().unwrap(),
            &[vol.to_string(), "--databases".into(), "t".into()],
        );
        let mut child = std::process::Command::new("/bin/sh")
            .args(&argv[1..])
            .env("PATH", dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"[client]\nuser=\"root\"\n[kubectl-upgrade:end-of-options]\n")
            .unwrap();
        (child.wait_with_output().unwrap(), dir)
    }

    fn report_of(o: &std::process::Output) -> Report {
        let mut r = Report::default();
        for l in String::from_utf8_lossy(&o.stderr).lines() {
            r.line(l);
        }
        r
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_stream_goes_through_dd_when_it_copies_full_blocks_and_through_tee_alone_without() {
        let want = dumped();
        // A dd without iflag=fullblock (older BusyBox) fails the probe as no dd does.
        let old_dd = "#!/bin/sh\necho \"dd: invalid iflag 'fullblock'\" >&2\nexit 1\n";
        for (dd, through_dd) in [(Some(""), true), (None, false), (Some(old_dd), false)] {
            let (o, _dir) = dump_with(dd, "-");
            let r = report_of(&o);
            assert_eq!(o.status.code(), Some(0), "dd {dd:?}: {o:?}");
            assert!(o.stdout == want, "dd {dd:?}: {} bytes", o.stdout.len());
            assert_eq!(r.dump_exit, Some(0), "dd {dd:?}");
            assert_eq!(r.dd_exit, through_dd.then_some(0), "dd {dd:?}");
            assert_eq!(
                r.pod_sha256.as_deref(),
                Some(sha256_hex(&want).as_str()),
                "dd {dd:?}"
            );
            assert_eq!(r.failure("fake-dump", 0, ""), None, "dd {dd:?}");
        }
    }

    #[test]
    fn the_copy_on_the_volume_is_written_and_digested_with_dd_too() {
        let want = dumped();
        let vol = tempfile::tempdir().unwrap();
        let path = vol.path().join("x.sql");
        let (o, _dir) = dump_with(Some(""), path.to_str().unwrap());
        let r = report_of(&o);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(o.stdout == want, "{} bytes", o.stdout.len());
        assert_eq!(r.dd_exit, Some(0));
        let on_volume = std::fs::read(vol.path().join("x.sql.partial")).unwrap();
        assert!(on_volume == want, "{} bytes on the volume", on_volume.len());
        assert_eq!(r.volume_sha256.as_deref(), Some(sha256_hex(&want).as_str()));
    }

    #[test]
    fn a_killed_or_failing_dd_fails_the_dump_and_is_named() {
        // Both pass the probe (they give back its byte), then stop after the first byte of
        // the dump: killed, or exiting with an error.
        let killed = "#!/bin/sh\n/usr/bin/head -c 1\nkill -KILL $$\n";
        let failing =
            "#!/bin/sh\n/usr/bin/head -c 1\necho 'dd: error writing: No space' >&2\nexit 1\n";
        for (fake, code) in [(killed, 137), (failing, 1)] {
            let (o, _dir) = dump_with(Some(fake), "-");
            let r = report_of(&o);
            assert_eq!(o.status.code(), Some(74), "{o:?}");
            assert_eq!(r.dd_exit, Some(code), "{o:?}");
            assert!(o.stdout.len() < DUMPED, "{} bytes", o.stdout.len());
            let why = r.failure("fake-dump", 74, "").expect("a failure");
            assert_eq!(
                why,
                format!(
                    "dd exited with {code} while copying the dump to the exec's stdout in the container"
                )
            );
        }
    }

    #[test]
    fn the_script_never_names_a_secret_and_reports_the_dump_s_own_status() {
        assert!(DUMP_BODY.contains("wait \"$p\"\nrc=$?"));
        assert!(!DUMP_BODY.contains("password"));
    }
}
