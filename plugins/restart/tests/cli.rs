//! The built binary as a user drives it: help that reads as a kubectl plugin, and bad input
//! refused with one line and exit 2 before any connection is made.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-upgrade-restart");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn help_reads_as_a_kubectl_plugin() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("help", String::from_utf8(o.stdout).unwrap());
    let o = run(&["pods", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("pods-help", String::from_utf8(o.stdout).unwrap());
}

/// Each refusal: exit 2, one line, naming the problem, before the (missing) kubeconfig is read.
#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["pods", "-n", "fdb"], "name what to restart"),
        (
            &["pods", "-n", "fdb", "--condition", "Sleepy"],
            "unknown pod condition \"Sleepy\"",
        ),
        (&["pods", "-n", "fdb", "$(id)"], "pod"),
        (
            &["pods", "-n", "fdb", "--all", "--mode", "in-place"],
            "--mode in-place runs the profile's restart command",
        ),
        (
            &["pods", "-n", "fdb", "--all", "--profile", "nope"],
            "unknown profile \"nope\"",
        ),
        (
            &["pods", "-n", "fdb", "--not-version", "latest"],
            "--not-version",
        ),
        (&["pods", "-n", "fdb", "-l", "a b"], "-l"),
        (
            &["pods", "-n", "fdb", "--all", "--max-unavailable", "0"],
            "0",
        ),
        (
            &[
                "pods",
                "-n",
                "fdb",
                "--process-condition",
                "Missing Processes",
            ],
            "--process-condition",
        ),
        (&["quiesce", "-n", "rok", "ds/rok-csi-node"], "cannot scale"),
        (
            &[
                "quiesce",
                "-n",
                "rok",
                "sts/rok-csi-controller",
                "--idle-logs",
                "a b",
            ],
            "--idle-logs",
        ),
        (
            &["quiesce", "-n", "rok", "sts/x", "--timeout", "soon"],
            "invalid duration",
        ),
    ];
    for (args, want) in cases {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        if !err.starts_with("error: invalid value") && !err.contains("Usage") {
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        }
    }
}
