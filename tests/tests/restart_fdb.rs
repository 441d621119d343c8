//! `kubectl upgrade-restart pods` on the FoundationDB scenario, one test per case of the
//! operator's upgrade guide: processes restarted too early (`MissingProcesses`), coordinators
//! left on the old version (restarted by pod, in place), and the all-at-once bounce a
//! version-incompatible upgrade needs. The operator stand-in recreates deleted pods and clears
//! the conditions once a group's process has restarted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use upgrade_e2e::harness::{TestCluster, text};

fn fdb() -> TestCluster {
    let c = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "foundationdb.org/fdb-cluster-name=sample",
        "--timeout=60s",
    ])
    .ok();
    c
}

fn uids(c: &TestCluster) -> BTreeMap<String, String> {
    let pods = c.get_json(&["pods", "-l", "foundationdb.org/fdb-cluster-name=sample"]);
    pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["uid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Sets the conditions of some process groups (and marks others for removal) through the status
/// subresource, as the operator writes them.
fn set_groups(c: &TestCluster, conditions: &[(&str, &str)], removal: &[&str]) {
    let cr = c.get_json(&["foundationdbcluster", "sample"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut groups = cr["status"]["processGroups"].clone();
    for g in groups.as_array_mut().expect("groups") {
        let id = g["processGroupID"].as_str().unwrap_or_default().to_string();
        for (gid, t) in conditions {
            if *gid == id {
                g["processGroupConditions"]
                    .as_array_mut()
                    .expect("conditions")
                    .push(json!({"type": t, "timestamp": now}));
            }
        }
        if removal.contains(&id.as_str()) {
            g["removalTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
    }
    let patch = json!({"status": {"processGroups": groups}}).to_string();
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ])
    .ok();
}

fn conditions(c: &TestCluster) -> BTreeMap<String, Vec<String>> {
    let cr = c.get_json(&["foundationdbcluster", "sample"]);
    cr["status"]["processGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            let list = g["processGroupConditions"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c["type"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (
                g["processGroupID"].as_str().unwrap_or_default().to_string(),
                list,
            )
        })
        .collect()
}

fn journal(c: &TestCluster) -> Value {
    let text = c.jsonpath(&["configmap", "kubectl-upgrade-restart"], "{.data.rollout}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The guide: processes restarted too early show `MissingProcesses`; restart those groups.
/// The runbook's step, as printed, selects them by condition; a group marked for removal is
/// left to the operator with a note; the others are not touched.
#[test]
fn processes_restarted_early_are_selected_by_missing_processes_and_rolled_one_by_one() {
    let c = fdb();
    set_groups(
        &c,
        &[
            ("storage-2", "MissingProcesses"),
            ("log-2", "MissingProcesses"),
            ("stateless-1", "MissingProcesses"),
        ],
        &["stateless-1"],
    );
    // A budget that allows one disruption at a time: the rolling restart goes through it.
    c.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: sample, namespace: default}\nspec:\n  maxUnavailable: 1\n  selector: {matchLabels: {foundationdb.org/fdb-cluster-name: sample}}\n",
    );
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--process-condition",
            "IncorrectCommandLine",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("rolling, 1 at a time, through the eviction API"),
        "{out}"
    );
    assert!(
        out.contains("pod/sample-log-2") && out.contains("pod/sample-storage-2"),
        "{out}"
    );
    assert!(
        out.contains(
            "pod/sample-stateless-1 skipped: process group stateless-1 is marked for removal"
        ),
        "{out}"
    );
    let after = uids(&c);
    for name in ["sample-log-2", "sample-storage-2"] {
        assert_ne!(before[name], after[name], "{name} was not recreated");
    }
    for name in ["sample-log-1", "sample-storage-1", "sample-stateless-1"] {
        assert_eq!(before[name], after[name], "{name} was restarted");
    }
    let now = conditions(&c);
    assert!(
        now["storage-2"].is_empty() && now["log-2"].is_empty(),
        "{now:?}"
    );
    assert_eq!(
        now["stateless-1"],
        ["SidecarUnreachable", "MissingProcesses"]
    );
    let outcome_rows = out.lines().filter(|l| l.contains("   ready   ")).count();
    assert_eq!(outcome_rows, 2, "{out}");
    assert_eq!(journal(&c)["finished"], true);
}

/// The guide: when most coordinators stay on the old version the cluster is unavailable and
/// they must be restarted by pod. In place, `pkill fdbserver` in each: the pods stay, the
/// monitor starts the server again, and the restart waits for `status.health.available`.
#[test]
fn coordinators_left_on_the_old_version_are_restarted_in_place_by_name() {
    let c = fdb();
    // The connection string names storage-1, storage-2 and log-1 as coordinators.
    set_groups(
        &c,
        &[
            ("storage-1", "IncorrectCommandLine"),
            ("storage-2", "IncorrectCommandLine"),
            ("log-1", "MissingProcesses"),
        ],
        &[],
    );
    c.wait_for(
        &["foundationdbcluster", "sample"],
        "{.status.health.available}",
        "false",
        Duration::from_secs(20),
    );
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "sample-storage-1",
            "sample-storage-2",
            "sample-log-1",
            "--mode",
            "in-place",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("`pkill fdbserver` in container foundationdb"),
        "{out}"
    );
    assert_eq!(before, uids(&c), "in place keeps every pod");
    let now = conditions(&c);
    for g in ["storage-1", "storage-2", "log-1"] {
        assert!(now[g].is_empty(), "{g}: {now:?}");
    }
    assert_eq!(
        c.jsonpath(
            &["foundationdbcluster", "sample"],
            "{.status.health.available}"
        ),
        "true"
    );
    let log = c
        .kubectl(&["logs", "sample-log-1", "-c", "foundationdb"])
        .ok();
    assert!(
        log.contains("fdbserver exited"),
        "the server was not restarted: {log}"
    );
}

/// A version-incompatible upgrade restarts every process together: all at once deletes every
/// selected pod, then waits once for all of them.
#[test]
fn an_all_at_once_bounce_restarts_every_process_together() {
    let c = fdb();
    set_groups(&c, &[], &["stateless-1"]);
    let before = uids(&c);
    let started = Instant::now();
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "-l",
            "foundationdb.org/fdb-cluster-name=sample",
            "--mode",
            "all-at-once",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("all at once"), "{out}");
    assert!(out.contains("batch 1/1"), "one batch: {out}");
    let after = uids(&c);
    for name in [
        "sample-log-1",
        "sample-log-2",
        "sample-storage-1",
        "sample-storage-2",
    ] {
        assert_ne!(before[name], after[name], "{name}");
    }
    assert_eq!(
        before["sample-stateless-1"], after["sample-stateless-1"],
        "marked for removal"
    );
    // Together: the four pods were deleted within a second of each other (their Killing events).
    let events = c.get_json(&["events"]);
    let times: Vec<jiff::Timestamp> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["reason"] == "Killing" && e["message"] == "Stopping container foundationdb")
        .filter_map(|e| e["lastTimestamp"].as_str()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 4, "{events}");
    let spread = times
        .iter()
        .max()
        .expect("max")
        .duration_since(*times.iter().min().expect("min"));
    assert!(spread.as_secs() <= 1, "deleted {spread:?} apart");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// An empty selection is refused before any prompt: exit 2, one line, nothing written.
#[test]
fn an_empty_selection_is_an_error_before_anything_happens() {
    let c = fdb();
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("nothing to restart: no pod in namespace default matches --process-condition MissingProcesses"), "{out}");
    assert_eq!(
        c.kubectl(&["get", "configmap", "kubectl-upgrade-restart"])
            .code,
        1
    );
    // A dry run plans and changes nothing.
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--all",
            "--dry-run",
            "--profile",
            "foundationdb",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Restart 5 pod(s) in default"),
        "{}",
        text(&o)
    );
    assert_eq!(before, uids(&c));
}

/// The check's runbook for 7.1 → 7.3 names this restart; run as printed (plus `--yes`, as
/// nobody is at a terminal), it restarts the group left on the old version.
#[test]
fn the_runbooks_restart_step_runs_as_printed() {
    let c = fdb();
    set_groups(&c, &[("storage-2", "IncorrectCommandLine")], &[]);
    let before = uids(&c);
    let o = c.plugin(
        "check",
        &[
            "--profile",
            "foundationdb",
            "-n",
            "default",
            "--to",
            "7.3.1",
            "-o",
            "json",
        ],
    );
    let report: Value = serde_json::from_slice(&o.stdout).expect("check prints JSON");
    let step = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["command"].as_str())
        .find(|c| c.starts_with("kubectl upgrade-restart "))
        .unwrap_or_else(|| panic!("no restart step: {report}"))
        .to_string();
    let mut args: Vec<&str> = step
        .strip_prefix("kubectl upgrade-restart ")
        .expect("prefix")
        .split_whitespace()
        .collect();
    args.push("--yes");
    let o = c.plugin("restart", &args);
    assert_eq!(o.status.code(), Some(0), "{step}: {}", text(&o));
    let after = uids(&c);
    assert_ne!(before["sample-storage-2"], after["sample-storage-2"]);
    assert_eq!(before["sample-storage-1"], after["sample-storage-1"]);
    assert!(conditions(&c)["storage-2"].is_empty());
}

/// After a clean upgrade no process group has the conditions: with `--if-any` (as the runbook
/// runs it) the empty selection is "nothing to restart" and exit 0, nothing asked or written;
/// named pods that do not exist stay an error even so.
#[test]
fn an_empty_selection_with_if_any_is_nothing_to_restart() {
    let c = fdb();
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--process-condition",
            "IncorrectCommandLine",
            "--if-any",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("nothing to restart: no pod in namespace default matches --process-condition MissingProcesses --process-condition IncorrectCommandLine"),
        "{out}"
    );
    assert_eq!(
        c.kubectl(&["get", "configmap", "kubectl-upgrade-restart"])
            .code,
        1,
        "no journal written"
    );
    assert_eq!(before, uids(&c));
    let o = c.plugin(
        "restart",
        &["pods", "-n", "default", "--if-any", "sample-storage-9"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("pod sample-storage-9 not found"),
        "{}",
        text(&o)
    );
}

/// The guide's "Processes are not restarted during the restart Phase": the operator stand-in,
/// told that storage-2's fdbserver is not bounced, leaves that group on the old version with
/// `MissingProcesses` and does not finish reconciling; the runbook's restart by condition
/// restarts it on the new version, and the reconciliation completes.
#[test]
fn a_process_group_the_version_change_left_behind_is_restarted_by_its_condition() {
    let c = fdb();
    c.kubectl(&[
        "annotate",
        "foundationdbcluster",
        "sample",
        "sim.kubectl-upgrade.dev/fdb-not-bounced=storage-2",
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--type=merge",
        "-p",
        r#"{"spec":{"version":"7.3.43"}}"#,
    ])
    .ok();
    let image = |pod: &str| {
        c.jsonpath(
            &["pod", pod],
            "{.spec.containers[?(@.name==\"foundationdb\")].image}",
        )
    };
    c.wait_for(
        &["pod", "sample-storage-1"],
        "{.spec.containers[?(@.name==\"foundationdb\")].image}",
        "foundationdb/foundationdb:7.3.43",
        Duration::from_secs(30),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !conditions(&c)["storage-2"].contains(&"MissingProcesses".to_string()) {
        assert!(Instant::now() < deadline, "{:?}", conditions(&c));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        image("sample-storage-2"),
        "foundationdb/foundationdb:7.1.33"
    );
    let reconciled = c.jsonpath(
        &["foundationdbcluster", "sample"],
        "{.status.generations.reconciled}",
    );
    assert_eq!(
        reconciled, "1",
        "not reconciled while a group is left behind"
    );
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--process-condition",
            "IncorrectCommandLine",
            "--if-any",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = uids(&c);
    assert_ne!(before["sample-storage-2"], after["sample-storage-2"]);
    assert_eq!(before["sample-storage-1"], after["sample-storage-1"]);
    assert_eq!(
        image("sample-storage-2"),
        "foundationdb/foundationdb:7.3.43"
    );
    c.wait_for(
        &["foundationdbcluster", "sample"],
        "{.status.generations.reconciled}",
        "2",
        Duration::from_secs(30),
    );
    assert!(conditions(&c)["storage-2"].is_empty());
}

/// `--not-version` with the profile looks at the version container only (`foundationdb`; the
/// sidecar's `7.1.33-1` tag does not count), and `-o json` gives the plan on a dry run and every
/// pod's outcome after a real one, as documents.
#[test]
fn not_version_selects_the_pod_left_on_the_old_image_and_json_reports_it() {
    let c = fdb();
    c.kubectl(&[
        "annotate",
        "foundationdbcluster",
        "sample",
        "sim.kubectl-upgrade.dev/fdb-not-bounced=log-2",
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--type=merge",
        "-p",
        r#"{"spec":{"version":"7.3.43"}}"#,
    ])
    .ok();
    for pod in [
        "sample-storage-1",
        "sample-storage-2",
        "sample-log-1",
        "sample-stateless-1",
    ] {
        c.wait_for(
            &["pod", pod],
            "{.spec.containers[?(@.name==\"foundationdb\")].image}",
            "foundationdb/foundationdb:7.3.43",
            Duration::from_secs(30),
        );
    }
    let args = [
        "pods",
        "-n",
        "default",
        "--profile",
        "foundationdb",
        "--not-version",
        "7.3.43",
        "-o",
        "json",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = c.plugin("restart", &dry);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let planned: Vec<&str> = plan["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(planned, ["sample-log-2"], "{plan}");
    assert_eq!(plan["mode"], "rolling", "{plan}");
    let before = uids(&c);
    let mut real = args.to_vec();
    real.push("--yes");
    let o = c.plugin("restart", &real);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(report["namespace"], "default", "{report}");
    assert!(report["stopped"].is_null(), "{report}");
    let outcomes = report["outcomes"].as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 1, "{report}");
    assert_eq!(outcomes[0]["pod"], "sample-log-2", "{report}");
    assert_eq!(outcomes[0]["result"], "ready", "{report}");
    let after = uids(&c);
    assert_ne!(before["sample-log-2"], after["sample-log-2"]);
    assert_eq!(before["sample-storage-1"], after["sample-storage-1"]);
    assert_eq!(
        c.jsonpath(
            &["pod", "sample-log-2"],
            "{.spec.containers[?(@.name==\"foundationdb\")].image}"
        ),
        "foundationdb/foundationdb:7.3.43"
    );
    // Nothing is left on another version: with -o json too, an empty selection stays an error.
    let o = c.plugin("restart", &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// The runbook runs the restart by condition right after `kubectl patch foundationdbcluster`;
/// a real operator takes seconds to minutes to bounce the processes and mark the one left
/// behind. The stand-in lags 3 s here: the restart waits until the operator acted on the new
/// generation (`status.generations`), then restarts the group it marked, instead of finding
/// nothing yet and leaving it on the old version.
#[test]
fn a_restart_right_after_the_patch_waits_for_the_operator_to_act_on_the_new_generation() {
    let c = fdb();
    c.kubectl(&[
        "annotate",
        "foundationdbcluster",
        "sample",
        "sim.kubectl-upgrade.dev/fdb-not-bounced=storage-2",
        "sim.kubectl-upgrade.dev/fdb-reconcile-delay=3s",
    ])
    .ok();
    let before = uids(&c);
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--type=merge",
        "-p",
        r#"{"spec":{"version":"7.3.43"}}"#,
    ])
    .ok();
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--process-condition",
            "IncorrectCommandLine",
            "--if-any",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("waiting (up to --timeout) for the operator to act on the current spec")
            && out.contains("foundationdbcluster/sample generation 2"),
        "{out}"
    );
    assert!(!out.contains("nothing to restart"), "{out}");
    let after = uids(&c);
    assert_ne!(
        before["sample-storage-2"], after["sample-storage-2"],
        "{out}"
    );
    assert_eq!(
        c.jsonpath(
            &["pod", "sample-storage-2"],
            "{.spec.containers[?(@.name==\"foundationdb\")].image}",
        ),
        "foundationdb/foundationdb:7.3.43"
    );
    c.wait_for(
        &["foundationdbcluster", "sample"],
        "{.status.generations.reconciled}",
        "2",
        Duration::from_secs(30),
    );
}

/// An operator that never acts on the new generation: the wait ends at --timeout with exit 2
/// and nothing restarted, never "nothing to restart".
#[test]
fn a_restart_by_condition_times_out_when_the_operator_never_acts() {
    let c = fdb();
    c.kubectl(&[
        "annotate",
        "foundationdbcluster",
        "sample",
        "sim.kubectl-upgrade.dev/operator-",
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--type=merge",
        "-p",
        r#"{"spec":{"version":"7.3.43"}}"#,
    ])
    .ok();
    let before = uids(&c);
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--if-any",
            "--yes",
            "--timeout",
            "2s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("timed out after 2s waiting for the operator to act on the current spec"),
        "{out}"
    );
    assert_eq!(before, uids(&c));
}

/// With --process-condition, a namespace without the custom resource, or a cluster that does
/// not serve it, has nothing to check at all: exit 2 even with --if-any, never success.
#[test]
fn a_restart_by_condition_with_no_custom_resource_is_bad_input_even_with_if_any() {
    let c = fdb();
    let step = |ns: &str| {
        c.plugin(
            "restart",
            &[
                "pods",
                "-n",
                ns,
                "--profile",
                "foundationdb",
                "--process-condition",
                "MissingProcesses",
                "--if-any",
                "--yes",
            ],
        )
    };
    let o = step("kube-system");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no FoundationDBCluster in namespace kube-system"),
        "{}",
        text(&o)
    );
    let served = TestCluster::start(&[]).expect("cluster");
    let o = served.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "--profile",
            "foundationdb",
            "--process-condition",
            "MissingProcesses",
            "--if-any",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the cluster does not serve FoundationDBCluster"),
        "{}",
        text(&o)
    );
}
