//! The binary without a cluster: help as a kubectl plugin, and bad input refused with one line
//! and exit 2 before any connection is tried (the kubeconfig points at nothing).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_kubectl-upgrade-backup"))
        .arg("--kubeconfig")
        .arg(dir.path().join("missing-kubeconfig"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_reads_as_a_kubectl_plugin() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Usage: kubectl upgrade-backup"), "{out}");
    for sub in ["dump", "verify", "restore", "list"] {
        assert!(out.contains(sub), "{sub}: {out}");
    }
    let o = run(&["dump", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--profile",
        "--target",
        "--container",
        "--database",
        "--all-databases",
        "--data-only",
        "--output <FILE>",
        "--to-volume",
        "--compress",
        "--dry-run",
        "--yes",
    ] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2_before_any_connection() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["dump", "--target", "svc/mysql", "--output", "x.sql"],
            "invalid --target \"svc/mysql\"",
        ),
        (
            &["dump", "--target", "deploy/mysql"],
            "name where the dump goes",
        ),
        (
            &[
                "dump",
                "--target",
                "deploy/mysql",
                "--database",
                "a;b",
                "--output",
                "x.sql",
            ],
            "invalid database name \"a;b\"",
        ),
        (
            &["dump", "--output", "x.sql"],
            "say where the database runs",
        ),
        (
            &["dump", "--profile", "nope", "--output", "x.sql"],
            "unknown profile \"nope\"",
        ),
        (
            &[
                "dump", "-n", "Bad_NS", "--target", "deploy/m", "--output", "x.sql",
            ],
            "invalid namespace name",
        ),
        (
            &["restore", "x.sql", "--target", "deploy/mysql", "--quiesce"],
            "--quiesce needs --profile",
        ),
        (
            &["verify", "x.sql", "--target", "deploy/m"],
            "go with --restore-test",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_file_without_a_manifest_is_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("plain.sql");
    std::fs::write(&f, "-- Dump completed\n").unwrap();
    let o = run(&["verify", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no manifest"), "{}", stderr(&o));
    let o = run(&["list", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unverified"));
}
