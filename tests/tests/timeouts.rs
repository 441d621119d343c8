//! Every plugin gives up on an API server that accepts connections and never answers: within
//! its default request limit, and within a bounded retry budget when `--request-timeout` is
//! short — never hanging, never retrying a silent server for long.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A listener that accepts every connection, reads what comes and never answers.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    format!("http://{addr}")
}

fn kubeconfig(dir: &tempfile::TempDir, server: &str) -> PathBuf {
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: default}}\ncurrent-context: x\n"
        ),
    )
    .expect("kubeconfig");
    path
}

/// A read-only command of each plugin that must talk to the cluster. Plugins whose binary is
/// not built yet are reported and left out.
const COMMANDS: &[(&str, &[&str])] = &[
    (
        "check",
        &["--profile", "fate", "-n", "fate-9999", "--to", "v1.9.0"],
    ),
    ("migrate-pv", &["status", "-n", "fate-9999"]),
    (
        "backup",
        &["dump", "-n", "fate-9999", "--profile", "fate", "--dry-run"],
    ),
    (
        "migrate-db",
        &["status", "-n", "fate-9999", "--profile", "fate"],
    ),
    ("restart", &["resume", "-n", "fate-9999", "--dry-run"]),
    (
        "verify",
        &[
            "record",
            "-n",
            "fate-9999",
            "--profile",
            "fate",
            "--output",
            "/dev/null",
        ],
    ),
];

/// Runs a plugin binary with a hard stop at `limit`; returns (exit code, stderr, time taken).
fn run_bounded(bin: &PathBuf, args: &[&str], limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin runs");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status.code(), err, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return (None, String::from("(killed)"), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn built(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(format!("kubectl-upgrade-{name}"));
    if bin.exists() {
        Some(bin)
    } else {
        eprintln!("kubectl-upgrade-{name} is not built: left out");
        None
    }
}

#[test]
fn a_short_request_timeout_ends_every_plugin_quickly() {
    let server = silent_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig(&dir, &server);
    let config = config.to_str().expect("utf-8 path");
    let mut ran = 0;
    for (name, args) in COMMANDS {
        let Some(bin) = built(name) else { continue };
        let mut all = vec!["--kubeconfig", config, "--request-timeout", "3s"];
        all.extend_from_slice(args);
        let (code, err, took) = run_bounded(&bin, &all, Duration::from_secs(60));
        assert_eq!(code, Some(2), "{name}: {err}");
        assert!(
            took < Duration::from_secs(10),
            "{name} took {took:?} against a silent server with --request-timeout 3s: {err}"
        );
        if ["check", "migrate-pv"].contains(name) {
            assert!(
                err.contains("no answer from the API server within 3s"),
                "{name}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        }
        ran += 1;
    }
    assert!(ran >= 2, "the check and migrate-pv at least");
}

#[test]
fn the_default_limit_ends_the_check_without_any_flag() {
    let server = silent_server();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = kubeconfig(&dir, &server);
    let bin = built("check").expect("kubectl-upgrade-check is built");
    let mut args = vec!["--kubeconfig", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(COMMANDS[0].1);
    let (code, err, took) = run_bounded(&bin, &args, Duration::from_secs(90));
    assert_eq!(code, Some(2), "{err}");
    assert!(took < Duration::from_secs(45), "took {took:?}");
    assert!(
        err.contains("no answer from the API server within 30s"),
        "{err}"
    );
}
