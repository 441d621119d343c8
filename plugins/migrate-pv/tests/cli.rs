//! The built binary's help and its refusals that need no cluster.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-upgrade-migrate-pv");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("COLUMNS", "100")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap()
}

#[test]
fn help_reads_as_a_kubectl_plugin_and_lists_every_command() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("Usage: kubectl upgrade-migrate-pv [OPTIONS] <COMMAND>"),
        "{out}"
    );
    for command in [
        "retain",
        "adopt",
        "restore-policy",
        "rollback",
        "status",
        "cleanup",
        "copy",
    ] {
        assert!(
            out.contains(&format!("\n  {command} ")),
            "{command} missing: {out}"
        );
    }
    let o = run(&["copy", "--help"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("Usage: kubectl upgrade-migrate-pv copy [OPTIONS] <SOURCE> <DEST>"),
        "{out}"
    );
}

#[test]
fn bad_names_and_flags_are_refused_before_any_connection() {
    for (args, expected) in [
        (
            &["adopt", "a", "B_C", "-n", "ns"][..],
            "invalid claim name \"B_C\"",
        ),
        (
            &["adopt", "a=b", "c", "-n", "ns"][..],
            "\"c\" is not a pair OLD=NEW",
        ),
        (
            &["adopt", "a=b", "b=c", "-n", "ns"][..],
            "pvc/b is named by two pairs (a=b and b=c)",
        ),
        (
            &["copy", "a", "b", "--create", "--size", "lots", "-n", "ns"][..],
            "--size \"lots\" is not a quantity",
        ),
        (
            &["copy", "a", "b", "--to-namespace", "Not/Valid"][..],
            "invalid namespace name \"Not/Valid\"",
        ),
        (
            &["status", "-n", "x y"][..],
            "invalid namespace name \"x y\"",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn help_states_one_meaning_for_each_exit_code() {
    let out = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(
        out.contains("1 refused by a safety rule (nothing was changed)"),
        "{out}"
    );
    assert!(
        out.contains("2 bad input or the command could not run"),
        "{out}"
    );
}

#[test]
fn adopt_help_names_both_forms_and_says_the_statefulset_does_not_derive_pairs() {
    let o = run(&["adopt", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("Usage: kubectl upgrade-migrate-pv adopt [OPTIONS] <OLD NEW | OLD=NEW>..."),
        "{out}"
    );
    assert!(
        out.contains("One pair is OLD NEW; several are OLD=NEW"),
        "{out}"
    );
    assert!(out.contains("it does not derive them"), "{out}");
}
