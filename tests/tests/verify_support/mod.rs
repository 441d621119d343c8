//! What the verify end-to-end tests share: running the plugin against a test cluster and
//! waiting, with a deadline, for the namespace to settle or for a difference to show.

// Each test file uses a part of these.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use upgrade_e2e::harness::TestCluster;

/// How long any wait in these tests may take.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Runs the plugin; returns (exit code, stdout, stderr).
pub fn run(c: &TestCluster, args: &[&str]) -> (i32, String, String) {
    let out = c.plugin("verify", args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Records the namespace (with `--yes`, as a script would); returns the baseline.
pub fn record(c: &TestCluster, args: &[&str]) -> Value {
    let mut a = vec!["record", "--yes", "-o", "json"];
    a.extend_from_slice(args);
    let (code, out, err) = run(c, &a);
    assert_eq!(code, 0, "record failed: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("record prints JSON ({e}): {out}"))
}

/// `verify|wait … -o json`: (exit code, report).
pub fn report(c: &TestCluster, command: &str, args: &[&str]) -> (i32, Value) {
    let mut a = vec![command, "-o", "json"];
    if command == "wait" {
        a.extend_from_slice(&["--timeout", "90s"]);
    }
    a.extend_from_slice(args);
    let (code, out, err) = run(c, &a);
    let report = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{command} prints JSON ({e}); exit {code}, stderr: {err}"));
    (code, report)
}

/// `verify … -o json`.
pub fn verify(c: &TestCluster, args: &[&str]) -> (i32, Value) {
    report(c, "verify", args)
}

/// `wait … -o json`, at most 90 s.
pub fn wait(c: &TestCluster, args: &[&str]) -> (i32, Value) {
    report(c, "wait", args)
}

/// Polls `verify` until a difference with `code` on an object starting with `object` shows
/// up; returns that difference and the whole report.
pub fn until_difference(
    c: &TestCluster,
    args: &[&str],
    code: &str,
    object: &str,
) -> (Value, Value) {
    until_difference_where(c, args, code, object, |_| true)
}

/// As [`until_difference`], for a difference that also satisfies `settled` (a state the
/// cluster reaches after passing through others: a rollout is first not yet observed, then
/// stuck).
pub fn until_difference_where(
    c: &TestCluster,
    args: &[&str],
    code: &str,
    object: &str,
    settled: impl Fn(&Value) -> bool,
) -> (Value, Value) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (exit, report) = verify(c, args);
        if let Some(d) = report["differences"].as_array().and_then(|ds| {
            ds.iter().find(|d| {
                d["code"] == code
                    && d["object"].as_str().is_some_and(|o| o.starts_with(object))
                    && settled(d)
            })
        }) {
            assert_eq!(exit, 1, "differences exit 1: {report:#}");
            return (d.clone(), report);
        }
        assert!(
            Instant::now() < deadline,
            "no {code} on {object}* within {DEADLINE:?}; last report: {report:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// (code, object) of every difference.
pub fn differences(report: &Value) -> Vec<(String, String)> {
    report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["object"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Waits until every pod of the namespace is Ready, so a baseline is of a settled app.
pub fn settled(c: &TestCluster, ns: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let pods = c.get_json(&["pods", "-n", ns]);
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        let ready = items.iter().all(|p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        });
        if !items.is_empty() && ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pods of {ns} not ready: {pods:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
