//! `kubectl upgrade-migrate-pv copy --verify=checksum` end to end: contents are proven from one
//! read of the source (the archive's digest as it streams) against the destination archived
//! again from its files, and a destination file changed after the copy, or a byte changed in
//! the stream between two namespaces, is found by name and exits 1. Its progress is shown as
//! plain lines in a log and as bars with rate and ETA on a terminal (a pseudo-terminal from
//! `script`), coloured unless `NO_COLOR` is set.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "kubeflow";

fn sh(c: &TestCluster, ns: &str, pod: &str, script: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.kubectl(&["exec", "-n", ns, pod, "--", "sh", "-c", script]);
        if r.code == 0 {
            return r.stdout;
        }
        assert!(Instant::now() < deadline, "{script}: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A small tree of every kind in MinIO's volume, with one file of `blob_mb` MiB.
fn write_tree(c: &TestCluster, blob_mb: u32) {
    sh(
        c,
        NS,
        "minio-0",
        &format!(
            "cd /data && mkdir -p b/empty && head -c {}000000 /dev/urandom > b/blob && ln b/blob b/hard && ln -s blob b/soft && truncate -s 64M b/sparse && printf tail >> b/sparse && chown 1000:1000 b/blob && chmod 0640 b/blob",
            blob_mb
        ),
    );
}

fn report(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// The differences a report lists, as `path: what`.
fn differences(report: &serde_json::Value) -> Vec<String> {
    report["differences"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    format!(
                        "{}: {}",
                        d["path"].as_str().unwrap_or_default(),
                        d["what"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Where the simulated provisioner keeps a bound claim's files on this machine.
fn volume_dir(c: &TestCluster, ns: &str, claim: &str) -> PathBuf {
    let pv = c.wait_for(
        &["pvc", claim, "-n", ns],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(60),
    );
    assert_eq!(pv, "Bound");
    let pv = c.jsonpath(&["pvc", claim, "-n", ns], "{.spec.volumeName}");
    PathBuf::from(c.jsonpath(&["pv", &pv], "{.spec.hostPath.path}"))
}

/// `copy` of MinIO's claim into a new claim `dest`, with the checksum verification.
fn copy_args(dest: &str) -> [&str; 9] {
    [
        "copy",
        "minio-data-minio-0",
        dest,
        "-n",
        NS,
        "--create",
        "--quiesce",
        "--verify=checksum",
        "--yes",
    ]
}

#[test]
fn a_checksum_copy_reads_the_source_once_and_proves_it_by_the_archive_digest() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    write_tree(&c, 5);
    let copy = |dest: &str, separate: bool| {
        let mut cmd = std::process::Command::new(upgrade_e2e::harness::plugin_binary("migrate-pv"));
        cmd.arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(copy_args(dest))
            .args(["-o", "json"]);
        if separate {
            cmd.env("MIGRATE_PV_CHECKSUMS", "separate");
        }
        cmd.output().expect("plugin runs")
    };
    let o = copy("streamed", false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["verified"], true, "{r:#}");
    assert_eq!(r["checksums"], "archive", "{r:#}");
    assert_eq!(r["files"], 3, "{r:#}");

    // The two-pass check, kept for comparison, proves the same copy file by file.
    let o = copy("separate", true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["verified"], true, "{r:#}");
    assert_eq!(r["checksums"], "per-file", "{r:#}");
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
}

#[test]
fn a_destination_file_changed_after_the_copy_is_found_by_its_content() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    write_tree(&c, 2);
    c.apply(
        r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: minio-copy, namespace: kubeflow}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {requests: {storage: 1Gi}}
"#,
    );
    let dest = volume_dir(&c, NS, "minio-copy");
    // Once the copy has written the file, and before the destination is archived again, one
    // byte of it changes; its size and mtime stay, so only its content tells.
    c.guard
        .faults()
        .before_exec(&["migrate-pv-digest"], move || {
            let path = dest.join("b/blob");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .expect("the copy wrote b/blob");
            let mtime = f.metadata().and_then(|m| m.modified()).expect("mtime");
            let mut byte = [0u8; 1];
            f.read_exact_at(&mut byte, 1000).expect("read");
            f.write_all_at(&[!byte[0]], 1000).expect("write");
            f.set_modified(mtime).expect("mtime restored");
        });
    let o = c.plugin(
        "migrate-pv",
        &[
            "copy",
            "minio-data-minio-0",
            "minio-copy",
            "-n",
            NS,
            "--quiesce",
            "--verify=checksum",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["verified"], false, "{r:#}");
    assert_eq!(r["checksums"], "per-file", "{r:#}");
    let found = differences(&r);
    assert!(
        found.contains(&"b/blob: content differs (sha256)".to_string())
            && found.contains(&"b/hard: content differs (sha256)".to_string()),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "nothing else differs: {found:?}");
    let status = c.plugin("migrate-pv", &["status", "-n", NS, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(status["operations"][0]["state"], "differs");
    let o = c.plugin(
        "migrate-pv",
        &["cleanup", "minio-data-minio-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn a_byte_changed_in_the_stream_between_namespaces_is_found_by_its_content() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.kubectl(&["create", "namespace", "kubeflow-v17"]).ok();
    write_tree(&c, 20);
    // Halfway through the 20 MB file, after the source pod has digested the archive and
    // before it reaches this command.
    c.guard
        .faults()
        .flip_exec_stdout(&["migrate-pv-pack"], 10_000_000);
    let o = c.plugin(
        "migrate-pv",
        &[
            "copy",
            "minio-data-minio-0",
            "minio-data",
            "-n",
            NS,
            "--to-namespace",
            "kubeflow-v17",
            "--create",
            "--quiesce",
            "--verify=checksum",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["verified"], false, "{r:#}");
    let found = differences(&r);
    assert!(
        found.contains(&"b/blob: content differs (sha256)".to_string()),
        "{found:?}"
    );
    for (ns, pod) in [
        (NS, "migrate-pv-minio-data-source"),
        ("kubeflow-v17", "migrate-pv-minio-data"),
    ] {
        assert!(
            c.kubectl(&["get", "pod", pod, "-n", ns]).code != 0,
            "pod/{pod} is removed"
        );
    }
}

/// Without a terminal each pass prints plain progress lines (here at every update) and how
/// long it took; with `-o json` stderr carries none.
#[test]
fn the_copy_the_listings_and_the_checksums_show_progress() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    write_tree(&c, 30);
    let copy = |dest: &str, json: bool| {
        let mut args = copy_args(dest).to_vec();
        if json {
            args.extend(["-o", "json"]);
        }
        std::process::Command::new(upgrade_e2e::harness::plugin_binary("migrate-pv"))
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(&args)
            .env("KUBECTL_UPGRADE_PROGRESS_EVERY", "0")
            .output()
            .expect("plugin runs")
    };
    let o = copy("shown", false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for line in [
        "copying: ",
        "listing /source: ",
        "listing /dest: ",
        "hashing /dest: ",
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(line) && l.contains('/')),
            "a line with a rate for {line:?}: {err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.starts_with("hashing /dest: ") && l.contains("ETA")),
        "the destination's hashing knows its total: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("listing /dest: ") && l.contains(" in ")),
        "how long the listing took: {err}"
    );
    let o = copy("quiet", true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "",
        "no progress with -o json"
    );
}

/// Runs the plugin on a pseudo-terminal (`script`), as a person at a terminal would, and returns
/// what the terminal showed.
fn on_a_terminal(c: &TestCluster, args: &[&str], no_color: bool) -> (Option<i32>, String) {
    let mut argv = vec![
        upgrade_e2e::harness::plugin_binary("migrate-pv")
            .display()
            .to_string(),
        "--kubeconfig".to_string(),
        c.kubeconfig.display().to_string(),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let line = shlex::try_join(argv.iter().map(String::as_str)).expect("quotable");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qefc", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let o = cmd.output().expect("script runs");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_the_copy_draws_bars_with_rate_and_eta_and_colour_unless_no_color() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    write_tree(&c, 120);
    let (code, shown) = on_a_terminal(&c, &copy_args("drawn"), false);
    assert_eq!(code, Some(0), "{shown}");
    // Bars, not the plain lines a log gets: a bar with its rate and ETA where the total is
    // known, redrawn in place.
    assert!(
        shown.contains("\x1b[2K") && shown.contains("ETA"),
        "bars redrawn in place, with an ETA: {shown:?}"
    );
    let moving = shown.split("copying [").skip(1).any(|frame| {
        let frame = frame.split("ETA").next().unwrap_or_default();
        frame.contains("/s") && !frame.contains(" 0 B/s")
    });
    assert!(
        moving,
        "the copy's bar shows a rate while it runs: {shown:?}"
    );
    assert!(
        !shown.lines().any(|l| l.starts_with("copying: ")),
        "no plain progress lines on a terminal: {shown:?}"
    );
    let sgr = |s: &str| {
        s.match_indices("\x1b[").any(|(i, _)| {
            s[i + 2..]
                .chars()
                .take_while(|ch| ch.is_ascii_digit() || *ch == ';')
                .count()
                > 0
                && s[i + 2..]
                    .trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == ';')
                    .starts_with('m')
        })
    };
    assert!(sgr(&shown), "colour on a terminal: {shown:?}");
    let (code, plain) = on_a_terminal(&c, &copy_args("uncoloured"), true);
    assert_eq!(code, Some(0), "{plain}");
    assert!(plain.contains("ETA"), "bars still drawn: {plain:?}");
    assert!(!sgr(&plain), "no colour with NO_COLOR: {plain:?}");
}
