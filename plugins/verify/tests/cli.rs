//! The built binary's help and its refusals that need no cluster.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-upgrade-verify");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("COLUMNS", "100")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap()
}

#[test]
fn help_reads_as_a_kubectl_plugin_with_the_suite_s_commands() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("Usage: kubectl upgrade-verify [OPTIONS] <COMMAND>"),
        "{out}"
    );
    for command in ["record", "verify", "wait"] {
        assert!(out.contains(&format!("\n  {command} ")), "{command}: {out}");
    }
    for (command, flags) in [
        (
            "record",
            &[
                "--profile",
                "--output <FILE>",
                "--deep",
                "--image <IMAGE>",
                "--dry-run",
                "--yes",
            ][..],
        ),
        (
            "verify",
            &[
                "--profile",
                "--to <VERSION>",
                "--baseline <FILE>",
                "-o, --output",
            ][..],
        ),
        (
            "wait",
            &["--to <VERSION>", "--timeout <DURATION>", "--watch"][..],
        ),
    ] {
        let o = run(&[command, "--help"]);
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(
            out.contains(&format!(
                "Usage: kubectl upgrade-verify {command} [OPTIONS]"
            )),
            "{out}"
        );
        for flag in flags {
            assert!(out.contains(flag), "{command} {flag}: {out}");
        }
        for common in [
            "--kubeconfig",
            "--context",
            "--namespace",
            "--request-timeout",
            "--color",
        ] {
            assert!(out.contains(common), "{command} {common}: {out}");
        }
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let bad_file = dir.path().join("not-a-baseline.json");
    std::fs::write(
        &bad_file,
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\"}",
    )
    .unwrap();
    let bad = bad_file.display().to_string();
    for (args, expected) in [
        (
            &["verify", "-n", "Bad_NS"][..],
            "invalid namespace name \"Bad_NS\"",
        ),
        (
            &["verify", "-n", "ns", "--to", "soon"][..],
            "--to: \"soon\" is not a version",
        ),
        (
            &["verify", "-n", "ns", "--baseline", "/nonexistent/b.json"][..],
            "cannot read baseline /nonexistent/b.json",
        ),
        (
            &["verify", "-n", "ns", "--baseline", &bad][..],
            "a ConfigMap of v1, expected a Baseline",
        ),
        (
            &["record", "-n", "ns", "--profile", "nope"][..],
            "unknown profile \"nope\"",
        ),
        (
            &["record", "-n", "ns", "--output", "/nonexistent/dir/b.json"][..],
            "the directory does not exist",
        ),
        (&["record", "-n", "ns", "--image", "busybox"][..], "--deep"),
        (
            &["wait", "-n", "ns", "--to", "v1", "--timeout", "soon"][..],
            "invalid duration",
        ),
    ] {
        let o = run(args);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}
