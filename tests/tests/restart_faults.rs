//! `kubectl upgrade-restart pods` when things go wrong: a pod that never becomes Ready stops
//! the rollout (exit 1, naming the pod, its state and its events, the rest untouched), a
//! disruption budget that allows nothing is waited on and then explained, and a rollout
//! SIGKILLed half-way goes on from its journal when run again.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use upgrade_e2e::harness::{TestCluster, plugin_binary, text};

/// A StatefulSet of `replicas` pods labelled `app=<name>`; `ready_after` makes readiness wait
/// for a file the container writes after that many seconds.
fn statefulset(name: &str, replicas: u32, command: &str, strategy: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  serviceName: {name}
  updateStrategy: {{type: {strategy}}}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "{command}"]
        readinessProbe:
          exec: {{command: ["test", "-f", "/work/up"]}}
          periodSeconds: 1
        volumeMounts: [{{name: work, mountPath: /work}}]
      volumes: [{{name: work, emptyDir: {{}}}}]
"#
    )
}

const UP: &str = "touch /work/up; exec sleep infinity";

fn uids(c: &TestCluster, app: &str) -> BTreeMap<String, String> {
    let label = format!("app={app}");
    let pods = c.get_json(&["pods", "-l", &label]);
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

fn ready(c: &TestCluster, app: &str) {
    let label = format!("app={app}");
    c.wait_for(
        &["sts", app],
        "{.status.readyReplicas}",
        &c.jsonpath(&["sts", app], "{.spec.replicas}"),
        Duration::from_secs(60),
    );
    c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        &label,
        "--timeout=60s",
    ])
    .ok();
}

fn journal(c: &TestCluster) -> Value {
    let text = c.jsonpath(&["configmap", "kubectl-upgrade-restart"], "{.data.rollout}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

#[test]
fn a_pod_that_never_becomes_ready_stops_the_rollout_naming_its_state_and_events() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(&statefulset("web", 3, UP, "OnDelete"));
    ready(&c, "web");
    // The next version of the template cannot start; OnDelete leaves the running pods alone.
    c.apply(&statefulset(
        "web",
        3,
        "echo cannot start: missing config; exit 3",
        "OnDelete",
    ));
    let before = uids(&c, "web");
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "-l",
            "app=web",
            "--yes",
            "--timeout",
            "8s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("pod/web-0 did not become Ready"), "{out}");
    assert!(out.contains("container main"), "its state: {out}");
    assert!(
        out.contains("events:") && out.contains("Started"),
        "its events: {out}"
    );
    assert!(out.contains("The rollout stops here"), "{out}");
    let row = |pod: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("pod/{pod} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("web-0").contains("failed"), "{out}");
    assert!(
        row("web-1").contains("not-started") && row("web-2").contains("not-started"),
        "{out}"
    );
    let after = uids(&c, "web");
    assert_ne!(before["web-0"], after["web-0"]);
    assert_eq!(
        before["web-1"], after["web-1"],
        "never continue past a pod that is not Ready"
    );
    assert_eq!(before["web-2"], after["web-2"]);
    assert_eq!(journal(&c)["finished"], false);
}

#[test]
fn a_disruption_budget_that_allows_nothing_is_waited_on_then_explained() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(&statefulset("db", 2, UP, "RollingUpdate"));
    c.apply(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: db, namespace: default}\nspec:\n  minAvailable: 2\n  selector: {matchLabels: {app: db}}\n",
    );
    ready(&c, "db");
    c.wait_for(
        &["pdb", "db"],
        "{.status.currentHealthy}",
        "2",
        Duration::from_secs(20),
    );
    let before = uids(&c, "db");
    let started = Instant::now();
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "db-0",
            "db-1",
            "--yes",
            "--timeout",
            "3s",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "it did not wait"
    );
    assert!(
        out.contains("waiting: the eviction of pod/db-0 is refused"),
        "{out}"
    );
    assert!(
        out.contains("poddisruptionbudget/db (minAvailable 2): 2 of 2 pods healthy, 2 needed, 0 disruption(s) allowed"),
        "{out}"
    );
    assert!(out.contains("Nothing was done to it"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pod/db-0 ") && l.contains("blocked")),
        "{out}"
    );
    assert_eq!(before, uids(&c, "db"), "nothing restarted");
}

#[test]
fn a_rollout_killed_half_way_goes_on_when_run_again() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(&statefulset(
        "app",
        4,
        &format!("sleep 1; {UP}"),
        "RollingUpdate",
    ));
    ready(&c, "app");
    let original = uids(&c, "app");
    let args = [
        "pods",
        "-n",
        "default",
        "-l",
        "app=app",
        "--yes",
        "--timeout",
        "60s",
    ];
    let mut child = Command::new(plugin_binary("restart"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("plugin runs");
    // Kill it once the journal says one pod is done and the next has begun.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = journal(&c);
        let steps: Vec<&str> = j["pods"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["step"].as_str()).collect())
            .unwrap_or_default();
        if steps.contains(&"done") && steps.contains(&"restarting") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rollout made no progress: {j}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let at_kill = journal(&c);
    assert_eq!(at_kill["finished"], false);
    let done_then: Vec<String> = at_kill["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .filter(|p| p["step"] == "done")
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    ready(&c, "app");
    let uids_then = uids(&c, "app");
    // Another selection is refused while this one is unfinished.
    let o = c.plugin("restart", &["pods", "-n", "default", "app-0", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("an unfinished rollout is recorded"),
        "{}",
        text(&o)
    );
    // The same command goes on with what is left.
    let o = c.plugin("restart", &args);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "Going on with the recorded rollout: {} of 4 done",
            done_then.len()
        )),
        "{out}"
    );
    assert!(out.contains("done in an earlier run"), "{out}");
    let now = uids(&c, "app");
    for (name, uid) in &original {
        assert_ne!(&now[name], uid, "{name} was never restarted");
    }
    for name in &done_then {
        assert_eq!(now[name], uids_then[name], "{name} was restarted twice");
    }
    assert_eq!(journal(&c)["finished"], true);
}

/// While it waits for pods to be Ready, `pods` shows how many of the rollout's pods are back
/// (shared progress: without a terminal a line every few seconds and how long it took at the
/// end); with `-o json` stderr carries no progress at all.
#[test]
fn the_wait_for_ready_pods_shows_progress_except_with_json() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(&statefulset(
        "slow",
        1,
        &format!("sleep 7; {UP}"),
        "RollingUpdate",
    ));
    ready(&c, "slow");
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "-l",
            "app=slow",
            "--yes",
            "--timeout",
            "60s",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        err.contains("restarting pods: 0 of 1 pods (0%)"),
        "a progress line while the pod is not Ready: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("restarting pods: 1 pods in ")),
        "how long it took: {err}"
    );
    ready(&c, "slow");
    let o = c.plugin(
        "restart",
        &[
            "pods",
            "-n",
            "default",
            "-l",
            "app=slow",
            "--yes",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!err.contains("restarting pods:"), "{err}");
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["outcomes"][0]["result"], "ready", "{report}");
}
