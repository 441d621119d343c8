//! Rok's upgrade guide: scale rok-operator (in rok-system) and rok-csi-controller to zero,
//! wait until rok-csi-node has logged nothing for a while, upgrade, scale back. Run with
//! `kubectl upgrade-restart quiesce` and `resume` on the Rok scenario, with a CSI node that
//! is still busy when the quiesce starts.

use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

/// A rok-csi-node DaemonSet whose pod logs twelve pending operations, 0.25 s apart, then
/// nothing.
const CSI_NODE: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: rok-csi-node, namespace: rok, labels: {app: rok-csi-node}}
spec:
  selector: {matchLabels: {app: rok-csi-node}}
  template:
    metadata: {labels: {app: rok-csi-node}}
    spec:
      containers:
      - name: csi-node
        image: gcr.io/arrikto/rok-csi:v1.5.3
        command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo pending operation $i; sleep 0.25; done; exec sleep infinity"]
"#;

fn replicas(c: &TestCluster, ns: &str, sts: &str) -> String {
    c.jsonpath(&["sts", sts, "-n", ns], "{.spec.replicas}")
}

fn pods(c: &TestCluster, ns: &str, app: &str) -> String {
    let label = format!("app={app}");
    c.kubectl(&["get", "pods", "-n", ns, "-l", &label, "-o", "name"])
        .ok()
}

#[test]
fn quiesce_waits_for_pods_gone_and_quiet_logs_and_resume_puts_the_replicas_back() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    c.kubectl(&[
        "scale",
        "sts/rok-csi-controller",
        "-n",
        "rok",
        "--replicas=2",
    ])
    .ok();
    for (ns, app) in [
        ("rok-system", "rok-operator"),
        ("rok", "rok-csi-controller"),
    ] {
        let label = format!("app={app}");
        c.wait_for(
            &["sts", app, "-n", ns],
            "{.status.readyReplicas}",
            if app == "rok-operator" { "1" } else { "2" },
            Duration::from_secs(60),
        );
        c.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-n",
            ns,
            "-l",
            &label,
            "--timeout=60s",
        ])
        .ok();
    }
    // A dry run names the order and the replicas to put back, and changes nothing.
    let args = [
        "quiesce",
        "-n",
        "rok",
        "rok-system/sts/rok-operator",
        "sts/rok-csi-controller",
        "--idle-logs",
        "app=rok-csi-node",
        "--idle-for",
        "2s",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = c.plugin("restart", &dry);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.find("sts/rok-operator").unwrap_or(usize::MAX)
            < out.find("sts/rok-csi-controller").unwrap_or(0),
        "{out}"
    );
    assert!(out.contains("log nothing for 2s"), "{out}");
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "2");

    c.apply(CSI_NODE);
    c.wait_for(
        &["ds", "rok-csi-node", "-n", "rok"],
        "{.status.numberReady}",
        "1",
        Duration::from_secs(60),
    );
    let mut run = args.to_vec();
    run.push("--yes");
    let started = Instant::now();
    let o = c.plugin("restart", &run);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it did not wait for quiet"
    );
    // It returned only after the CSI node had finished its pending operations.
    let log = c.kubectl(&["logs", "-n", "rok", "ds/rok-csi-node"]).ok();
    assert!(
        log.contains("pending operation 12"),
        "returned while busy: {log}"
    );
    assert_eq!(replicas(&c, "rok-system", "rok-operator"), "0");
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "0");
    assert_eq!(pods(&c, "rok-system", "rok-operator"), "");
    assert_eq!(pods(&c, "rok", "rok-csi-controller"), "");
    let record = c.jsonpath(
        &["configmap", "kubectl-upgrade-restart", "-n", "rok"],
        "{.data.quiesce}",
    );
    assert!(
        record.contains("\"replicas\":2") && record.contains("rok-system"),
        "{record}"
    );

    // A second quiesce (after a kill, say) keeps the replicas recorded the first time.
    let o = c.plugin(
        "restart",
        &["quiesce", "-n", "rok", "sts/rok-csi-controller", "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("rok-csi-controller   rok         0          0    2"),
        "{}",
        text(&o)
    );

    let o = c.plugin("restart", &["resume", "-n", "rok", "--yes"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.find("sts/rok-csi-controller").unwrap_or(usize::MAX)
            < out.find("sts/rok-operator").unwrap_or(0),
        "resumed in reverse: {out}"
    );
    assert_eq!(replicas(&c, "rok-system", "rok-operator"), "1");
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "2");
    assert_eq!(
        c.jsonpath(
            &["sts", "rok-csi-controller", "-n", "rok"],
            "{.status.readyReplicas}"
        ),
        "2"
    );
    let o = c.plugin("restart", &["resume", "-n", "rok", "--yes"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o).contains("nothing to resume"), "{}", text(&o));
}

#[test]
fn quiesce_gives_up_on_logs_that_never_go_quiet_and_resume_still_knows() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    c.apply(&CSI_NODE.replace("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo pending operation $i; sleep 0.25; done; exec sleep infinity", "while true; do echo busy; sleep 0.2; done"));
    c.wait_for(
        &["ds", "rok-csi-node", "-n", "rok"],
        "{.status.numberReady}",
        "1",
        Duration::from_secs(60),
    );
    let o = c.plugin(
        "restart",
        &[
            "quiesce",
            "-n",
            "rok",
            "sts/rok-csi-controller",
            "--idle-logs",
            "app=rok-csi-node",
            "--idle-for",
            "2s",
            "--timeout",
            "4s",
            "--yes",
        ],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("did not stay quiet for 2s within 4s; last line from pod/"),
        "{out}"
    );
    assert!(out.contains("busy"), "{out}");
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "0");
    let o = c.plugin("restart", &["resume", "-n", "rok", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "1");
}

/// The check's runbook for v1 → v2 names this quiesce; run as printed (plus `--yes`), it stops
/// the operator and the CSI controller and waits the guide's 30 s of quiet.
#[test]
fn the_runbooks_quiesce_step_runs_as_printed() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    c.apply(CSI_NODE);
    c.wait_for(
        &["sts", "rok-operator", "-n", "rok-system"],
        "{.status.readyReplicas}",
        "1",
        Duration::from_secs(60),
    );
    let o = c.plugin(
        "check",
        &["--profile", "rok", "-n", "rok", "--to", "v2", "-o", "json"],
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("check prints JSON");
    let step = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["command"].as_str())
        .find(|c| c.starts_with("kubectl upgrade-restart quiesce "))
        .unwrap_or_else(|| panic!("no quiesce step: {report}"))
        .to_string();
    let mut args: Vec<&str> = step
        .strip_prefix("kubectl upgrade-restart ")
        .expect("prefix")
        .split_whitespace()
        .collect();
    args.push("--yes");
    let started = Instant::now();
    let o = c.plugin("restart", &args);
    assert_eq!(o.status.code(), Some(0), "{step}: {}", text(&o));
    assert!(started.elapsed() >= Duration::from_secs(30), "{step}");
    assert_eq!(replicas(&c, "rok-system", "rok-operator"), "0");
    assert_eq!(replicas(&c, "rok", "rok-csi-controller"), "0");
}
