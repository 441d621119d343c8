//! The built binary, driven as a user drives it: help, output formats, colours, exit codes and
//! one-line errors; found by real kubectl as a plugin; live mode against a mock API server.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod mock_api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kubectl-upgrade-check");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("COLUMNS", "100")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn help_reads_as_a_kubectl_plugin() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("help", stdout(&o));
}

#[test]
fn table_output_of_the_bundled_example() {
    let o = run(&[
        "--profile",
        "fate",
        "--from-file",
        "examples/fate/cluster.yaml",
        "--to",
        "v1.9.0",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "needs-steps exits 1: {}",
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(!out.contains('\u{1b}'), "no colour into a pipe");
    insta::assert_snapshot!("fate-example-table", out);
}

#[test]
fn json_output_and_exit_zero_for_a_safe_upgrade() {
    let o = run(&[
        "--profile",
        "fate",
        "--from-file",
        "examples/fate/cluster.yaml",
        "--from",
        "v1.7.2",
        "--to",
        "v1.8.0",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["verdict"], "safe");
    assert_eq!(json["profile"], "fate");
    assert_eq!(json["from"], "v1.7.2");
    assert_eq!(json["to"], "v1.8.0");
    assert!(
        json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["command"] == "kubefate cluster update -f cluster.yaml")
    );
}

#[test]
fn yaml_output_parses_and_matches_json() {
    let args = [
        "--profile",
        "fate",
        "--from-file",
        "examples/fate/cluster.yaml",
        "--to",
        "v1.9.0",
    ];
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&run(&[&args[..], &["-o", "json"]].concat()))).unwrap();
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&stdout(&run(&[&args[..], &["-o", "yaml"]].concat()))).unwrap();
    assert_eq!(json, yaml);
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let args = [
        "--profile",
        "fate",
        "--from-file",
        "examples/fate/cluster.yaml",
        "--to",
        "v1.9.0",
        "--color",
        "always",
    ];
    assert!(
        stdout(&run(&args)).contains("\u{1b}["),
        "--color always colours"
    );
    let o = Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\u{1b}'), "NO_COLOR wins");
}

fn one_line_error(args: &[&str], expected: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(expected), "{err:?} lacks {expected:?}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_input_is_one_line_and_exit_two() {
    one_line_error(
        &["--profile", "nope", "--to", "v1"],
        "unknown profile \"nope\" (built-in profiles: fate, foundationdb, kubeflow, rok)",
    );
    one_line_error(
        &[
            "--profile",
            "fate",
            "--from-file",
            "examples/fate/cluster.yaml",
            "--to",
            "v1.8.7",
        ],
        "unknown fate version v1.8.7",
    );
    one_line_error(
        &[
            "--profile",
            "fate",
            "--from-file",
            "examples/fate/cluster.yaml",
            "--to",
            "banana",
        ],
        "--to: \"banana\" is not a version",
    );
    one_line_error(
        &[
            "--profile",
            "fate",
            "--from-file",
            "no/such/file.yaml",
            "--to",
            "v1.9.0",
        ],
        "cannot read no/such/file.yaml",
    );
    one_line_error(
        &[
            "--profile",
            "fate",
            "-n",
            "Bad;Name",
            "--from-file",
            "examples/fate/cluster.yaml",
            "--to",
            "v1.9.0",
        ],
        "invalid namespace name \"Bad;Name\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.yaml");
    std::fs::write(
        &bad,
        "name: x\nchartVersion: v1.8.0\nmodules: [a, b\npersistence: true\n",
    )
    .unwrap();
    let o = run(&[
        "--profile",
        "fate",
        "--from-file",
        bad.to_str().unwrap(),
        "--to",
        "v1.9.0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    let prefix = format!("error: {}:", bad.display());
    assert!(err.starts_with(&prefix), "names the file: {err}");
    let line: u32 = err[prefix.len()..]
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("then the line");
    assert!((3..=4).contains(&line), "{err}");
    let hostile = dir.path().join("hostile.yaml");
    std::fs::write(
        &hostile,
        "kind: PersistentVolumeClaim\napiVersion: v1\nmetadata: {name: \"x; rm -rf /\"}\n",
    )
    .unwrap();
    one_line_error(
        &[
            "--profile",
            "fate",
            "--from",
            "v1.8.0",
            "--from-file",
            hostile.to_str().unwrap(),
            "--to",
            "v1.9.0",
        ],
        "invalid PersistentVolumeClaim name \"x; rm -rf /\"",
    );
}

#[test]
fn a_broken_profile_file_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.yaml");
    let text = upgrade_shared::profile::BUILTIN[0].1.replace(
        "from: \"<=1.7.1\"\n    to: \">=1.7.2\"",
        "from: \"<=1.7.1\"\n    to: \"not a range\"",
    );
    std::fs::write(&path, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("not a range"))
        .unwrap()
        + 1;
    let o = run(&[
        "--profile-file",
        path.to_str().unwrap(),
        "--from-file",
        "examples/fate/cluster.yaml",
        "--to",
        "v1.9.0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("error: {}:{line}: edges.to:", path.display())),
        "{err}"
    );
}

#[test]
fn an_unreachable_cluster_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, mock_api::kubeconfig("http://127.0.0.1:9")).unwrap();
    let o = run(&[
        "--profile",
        "fate",
        "-n",
        "fate-9999",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--to",
        "v1.9.0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot read the application from the cluster"),
        "{}",
        stderr(&o)
    );
}

/// kubectl maps `kubectl upgrade-check` to an executable `kubectl-upgrade_check` (dashes in a
/// command become underscores; krew and scripts/install make that link) and `kubectl upgrade
/// check` to `kubectl-upgrade-check` itself.
#[test]
fn kubectl_finds_it_as_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(BIN, dir.path().join("kubectl-upgrade-check")).unwrap();
    std::os::unix::fs::symlink(BIN, dir.path().join("kubectl-upgrade_check")).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for invocation in [
        &["upgrade-check", "--list-profiles"][..],
        &["upgrade", "check", "--list-profiles"][..],
    ] {
        let o = Command::new("kubectl")
            .args(invocation)
            .env("PATH", &path)
            .output()
            .expect("kubectl is installed");
        assert_eq!(
            o.status.code(),
            Some(0),
            "kubectl {invocation:?}: {}",
            stderr(&o)
        );
        let out = stdout(&o);
        for name in ["fate", "foundationdb", "kubeflow", "rok"] {
            assert!(out.contains(name), "{out}");
        }
    }
}

#[test]
fn live_mode_lists_each_kind_once_per_namespace_with_pages() {
    let server = mock_api::MockApi::start(
        &repo().join("plugins/check/tests/fixtures/fate-1.8.0-storage-class.yaml"),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, mock_api::kubeconfig(&server.url())).unwrap();
    let o = run(&[
        "--profile",
        "fate",
        "-n",
        "fate-9999",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--to",
        "v1.9.0",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["from"], "v1.8.0", "read from the python image tag");
    assert_eq!(json["persistence"], "storage-class");
    let codes: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(codes.contains(&"reclaim-policy-delete"), "{codes:?}");
    let requests = server.requests();
    assert!(
        requests.iter().all(|r| r.contains("limit=500")),
        "every request is a paged list: {requests:#?}"
    );
    let pages = requests
        .iter()
        .filter(|r| r.contains("/deployments"))
        .count();
    assert_eq!(pages, 2, "deployments came in two pages: {requests:#?}");
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("/deployments/") || r.contains("/pods/")),
        "no object-by-object gets"
    );
}

/// Issue 8, item 4: exit 2 and one line when the namespace holds nothing of the application.
#[test]
fn issue8_4_an_empty_namespace_exits_two() {
    let server = mock_api::MockApi::start(
        &repo().join("plugins/check/tests/fixtures/fate-1.8.0-storage-class.yaml"),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, mock_api::kubeconfig(&server.url())).unwrap();
    one_line_error(
        &[
            "--profile",
            "fate",
            "-n",
            "nosuchns",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--from",
            "v1.8.0",
            "--to",
            "v1.9.0",
        ],
        "no FATE components in namespace nosuchns (looked for fateMoudle=mysql, ",
    );
}

/// Issue 8, item 10: `--list-profiles -o json` prints JSON, not a table.
#[test]
fn issue8_10_list_profiles_follows_the_output_format() {
    let o = run(&["--list-profiles", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["fate", "foundationdb", "kubeflow", "rok"]);
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&stdout(&run(&["--list-profiles", "-o", "yaml"]))).unwrap();
    assert_eq!(yaml, json);
}

/// Issue 8, item 12: an error whose message already holds its cause does not repeat it
/// ("… (os error 2): No such file or directory (os error 2)").
#[test]
fn issue8_12_a_cause_is_printed_once() {
    let o = run(&[
        "--profile",
        "fate",
        "-n",
        "fate-9999",
        "--to",
        "v1.9.0",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}
