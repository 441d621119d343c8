//! `kubectl upgrade-migrate-pv adopt OLD=NEW OLD2=NEW2 …` end to end on the simulated cluster:
//! several pairs adopted by one command (checked against the target StatefulSets), one bad pair
//! refusing every pair before any change, a SIGKILL mid-way and a re-run that finishes every
//! pair, the rollback of one pair leaving the others adopted, and an owner of two adopted
//! claims that comes back only with the second rollback.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, plugin_binary, scenario, text};

const NS: &str = "fate-9999";

/// The FATE v1.8.0 claims that v1.9.0's StatefulSets expect under other names, and the
/// Deployments that mount them.
const PAIRS: [(&str, &str, &str); 3] = [
    ("mysql-data", "data-mysql-0", "mysql"),
    (
        "nodemanager-0-data",
        "data-dir-nodemanager-0",
        "nodemanager-0",
    ),
    (
        "nodemanager-1-data",
        "data-dir-nodemanager-1",
        "nodemanager-1",
    ),
];

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-pv", args)
}

fn pair_words() -> Vec<String> {
    PAIRS
        .iter()
        .map(|(old, new, _)| format!("{old}={new}"))
        .collect()
}

/// `adopt` with every pair and these further arguments.
fn adopt_args(extra: &[&str]) -> Vec<String> {
    let mut args = vec!["adopt".to_string()];
    args.extend(pair_words());
    args.extend(["-n", NS].iter().map(|s| s.to_string()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn adopt(c: &TestCluster, extra: &[&str]) -> Output {
    let args = adopt_args(extra);
    migrate(c, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn volume_of(c: &TestCluster, claim: &str) -> String {
    c.jsonpath(&["pvc", claim, "-n", NS], "{.spec.volumeName}")
}

/// Scales these Deployments to zero and waits until their pods are gone.
fn stop(c: &TestCluster, deployments: &[&str]) {
    for d in deployments {
        c.kubectl(&["scale", &format!("deploy/{d}"), "-n", NS, "--replicas=0"])
            .ok();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for d in deployments {
        let selector = format!("fateMoudle={d}");
        while !c
            .kubectl(&["get", "pods", "-n", NS, "-l", &selector, "-o", "name"])
            .stdout
            .trim()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "the pods of {d} did not stop");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn stop_all(c: &TestCluster) {
    stop(c, &PAIRS.map(|(_, _, d)| d));
}

/// The new claim is Bound to the old claim's volume (nothing copied), kept by Retain with the
/// original policy recorded, and the old claim is gone.
fn assert_adopted(c: &TestCluster, old: &str, new: &str, volume: &str) {
    assert_eq!(
        c.jsonpath(&["pvc", new, "-n", NS], "{.status.phase}"),
        "Bound",
        "pvc/{new}"
    );
    assert_eq!(volume_of(c, new), volume, "pvc/{new} is on the same volume");
    assert_eq!(
        c.jsonpath(&["pv", volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Retain"
    );
    assert_eq!(
        c.jsonpath(
            &["pv", volume],
            "{.metadata.annotations.upgrade\\.kubectl-upgrade\\.dev/original-reclaim-policy}"
        ),
        "Delete"
    );
    assert!(
        c.kubectl(&["get", "pvc", old, "-n", NS]).code != 0,
        "pvc/{old} is gone"
    );
}

/// Nothing of any pair changed: every old claim Bound to its volume under Delete, no new claim.
fn assert_untouched(c: &TestCluster, volumes: &[String]) {
    for ((old, new, _), volume) in PAIRS.iter().zip(volumes) {
        assert_eq!(volume_of(c, old), *volume, "pvc/{old} keeps its volume");
        assert_eq!(
            c.jsonpath(&["pvc", old, "-n", NS], "{.status.phase}"),
            "Bound"
        );
        assert_eq!(
            c.jsonpath(&["pv", volume], "{.spec.persistentVolumeReclaimPolicy}"),
            "Delete",
            "pv/{volume} keeps its policy"
        );
        assert!(
            c.kubectl(&["get", "pvc", new, "-n", NS]).code != 0,
            "pvc/{new} was not created"
        );
    }
    assert!(
        c.kubectl(&["get", "configmap", "kubectl-upgrade-migrate-pv", "-n", NS])
            .code
            != 0,
        "nothing was journalled"
    );
}

fn volumes(c: &TestCluster) -> Vec<String> {
    PAIRS.iter().map(|(old, _, _)| volume_of(c, old)).collect()
}

fn status(c: &TestCluster) -> serde_json::Value {
    let o = migrate(c, &["status", "-n", NS, "-o", "json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("status: {e}: {}", text(&o)))
}

/// Each pair's journal state, by new claim.
fn journal_states(c: &TestCluster) -> Vec<(String, String)> {
    let status = status(c);
    let mut states: Vec<(String, String)> = status["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .filter(|o| o["operation"] == "adopt")
        .map(|o| {
            (
                o["claims"].as_str().unwrap_or_default().to_string(),
                o["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    states.sort();
    states
}

fn all_done() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = PAIRS
        .iter()
        .map(|(old, new, _)| (format!("{old} → {new}"), "done".to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn several_pairs_are_adopted_by_one_command_checked_against_their_statefulsets() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volumes = volumes(&c);
    stop_all(&c);
    let target = scenario("fate-1.9.0.yaml");
    let target = target.to_str().expect("utf-8");
    let checks = [
        "--for-statefulset",
        "mysql",
        "--for-statefulset",
        "nodemanager",
        "-f",
        target,
    ];
    // The dry run plans every pair and changes nothing.
    let mut extra = checks.to_vec();
    extra.push("--dry-run");
    let o = adopt(&c, &extra);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (old, new, _) in PAIRS {
        assert!(
            text(&o).contains(&format!("pvc/{old} → pvc/{new}:")),
            "{}",
            text(&o)
        );
        assert!(
            text(&o).contains(&format!("delete pvc/{old}")),
            "{}",
            text(&o)
        );
    }
    assert_untouched(&c, &volumes);

    let mut extra = checks.to_vec();
    extra.extend(["--yes", "-o", "json"]);
    let o = adopt(&c, &extra);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let result: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let pairs = result["pairs"].as_array().expect("pairs");
    assert_eq!(pairs.len(), PAIRS.len(), "{result:#}");
    for ((old, new, _), (out, volume)) in PAIRS.iter().zip(pairs.iter().zip(&volumes)) {
        assert_eq!(out["old_claim"], *old);
        assert_eq!(out["new_claim"], *new);
        assert_eq!(out["volume"], volume.as_str());
        assert_eq!(out["outcome"], "done", "{out:#}");
        let steps = out["steps"].as_array().expect("steps");
        assert!(steps.iter().all(|s| s["outcome"] == "done"), "{out:#}");
        assert_eq!(steps.last().expect("a step")["action"], "wait-bound");
        assert_adopted(&c, old, new, volume);
    }
    assert_eq!(journal_states(&c), all_done());

    // Run again: every pair is found done, nothing is changed.
    let mut extra = checks.to_vec();
    extra.push("--yes");
    let o = adopt(&c, &extra);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("already done"), "{}", text(&o));
}

#[test]
fn one_bad_pair_refuses_every_pair_before_any_change() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volumes = volumes(&c);
    // nodemanager-1 still runs: its pair is refused (a safety rule: exit 1), and so is
    // every other pair, although their claims are free.
    stop(&c, &["mysql", "nodemanager-0"]);
    let o = adopt(&c, &["--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("nothing was changed")
            && err.contains("nodemanager-1-data=data-dir-nodemanager-1: pvc/nodemanager-1-data is used by pod/nodemanager-1-"),
        "{err}"
    );
    assert_untouched(&c, &volumes);

    // A claim that does not exist is bad input (exit 2): nothing changes either.
    stop(&c, &["nodemanager-1"]);
    let mut args = adopt_args(&["--yes"]);
    args.insert(2, "nope=data-nope-0".into());
    let o = migrate(&c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("nope=data-nope-0: persistentvolumeclaims \"nope\" not found"),
        "{}",
        text(&o)
    );
    assert_untouched(&c, &volumes);

    // A new claim that is not one of the StatefulSet's refuses them all (exit 1).
    let target = scenario("fate-1.9.0.yaml");
    let o = migrate(
        &c,
        &[
            "adopt",
            "mysql-data=data-mysql-0",
            "nodemanager-0-data=nodemanager-0-data-0",
            "-n",
            NS,
            "--for-statefulset",
            "mysql",
            "--for-statefulset",
            "nodemanager",
            "-f",
            target.to_str().expect("utf-8"),
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("pvc/nodemanager-0-data-0 is not a claim of sts/mysql")
            && text(&o).contains("is not a claim of sts/nodemanager"),
        "{}",
        text(&o)
    );
    // Several bad pairs: each is named, and bad input decides the exit code.
    let o = migrate(
        &c,
        &[
            "adopt",
            "nope=data-nope-0",
            "mysql-data=data-mysql-0",
            "gone=data-gone-0",
            "-n",
            NS,
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("2 of 3 cannot be adopted")
            && text(&o).contains("nope=data-nope-0:")
            && text(&o).contains("gone=data-gone-0:"),
        "{}",
        text(&o)
    );
    assert_untouched(&c, &volumes);
}

#[test]
fn killed_mid_way_and_run_again_finishes_every_pair() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volumes = volumes(&c);
    stop_all(&c);
    // Slow every volume and claim request so that the kill lands inside the pairs' steps.
    for resource in ["persistentvolumes", "persistentvolumeclaims"] {
        c.guard
            .faults()
            .delay_next(resource, 60, Duration::from_millis(150));
    }
    let args = adopt_args(&["--yes"]);
    let mut child = Command::new(plugin_binary("migrate-pv"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("plugin starts");
    // SIGKILL as soon as the first change is seen: a volume set to Retain.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !volumes
        .iter()
        .any(|v| c.jsonpath(&["pv", v], "{.spec.persistentVolumeReclaimPolicy}") == "Retain")
    {
        assert!(
            Instant::now() < deadline,
            "the adoption never started: {:?}",
            child.try_wait()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let bound = PAIRS
        .iter()
        .filter(|(_, new, _)| c.jsonpath(&["pvc", new, "-n", NS], "{.status.phase}") == "Bound")
        .count();
    assert!(bound < PAIRS.len(), "killed mid-way, not after the end");
    assert!(
        journal_states(&c).iter().all(|(_, s)| s == "started"),
        "every pair was journalled before the first change: {:?}",
        journal_states(&c)
    );
    for v in &volumes {
        let phase = c.jsonpath(&["pv", v], "{.status.phase}");
        let policy = c.jsonpath(&["pv", v], "{.spec.persistentVolumeReclaimPolicy}");
        assert!(
            !(phase == "Released" && policy == "Delete"),
            "pv/{v}: Released under Delete"
        );
    }
    let o = migrate(&c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for ((old, new, _), volume) in PAIRS.iter().zip(&volumes) {
        assert_adopted(&c, old, new, volume);
    }
    assert_eq!(journal_states(&c), all_done());
}

#[test]
fn rollback_of_one_pair_leaves_the_others_adopted() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volumes = volumes(&c);
    stop_all(&c);
    let o = adopt(&c, &["--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = migrate(
        &c,
        &["rollback", "data-dir-nodemanager-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(volume_of(&c, "nodemanager-0-data"), volumes[1]);
    assert_eq!(
        c.jsonpath(&["pvc", "nodemanager-0-data", "-n", NS], "{.status.phase}"),
        "Bound"
    );
    assert!(
        c.kubectl(&["get", "pvc", "data-dir-nodemanager-0", "-n", NS])
            .code
            != 0
    );
    for i in [0, 2] {
        let (old, new, _) = PAIRS[i];
        assert_adopted(&c, old, new, &volumes[i]);
    }
    let states = journal_states(&c);
    assert!(
        states.contains(&(
            "nodemanager-0-data → data-dir-nodemanager-0".into(),
            "rolled-back".into()
        )),
        "{states:?}"
    );
}

#[test]
fn a_pair_that_fails_does_not_hide_the_others_and_the_exit_status_says_so() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volumes = volumes(&c);
    stop_all(&c);
    // The first claim created is refused for good (403 is not retried): that pair fails, the
    // other two go on.
    c.guard
        .faults()
        .fail_next("persistentvolumeclaims", Some("create"), 1, 403);
    let o = adopt(&c, &["--yes", "-o", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let result: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("the outcome is printed on failure too: {e}: {}", text(&o)));
    let pairs = result["pairs"].as_array().expect("pairs");
    let failed: Vec<&serde_json::Value> =
        pairs.iter().filter(|p| p["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{result:#}");
    assert_eq!(
        pairs.iter().filter(|p| p["outcome"] == "done").count(),
        2,
        "{result:#}"
    );
    let steps = failed[0]["steps"].as_array().expect("steps");
    let outcomes: Vec<&str> = steps
        .iter()
        .map(|s| s["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outcomes,
        ["done", "done", "done", "failed", "not-run"],
        "Retain, delete, pre-bind done; create failed; the wait not run: {result:#}"
    );
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("create pvc/")),
        "{result:#}"
    );
    assert!(
        text(&o).contains("1 of 3 pairs did not complete"),
        "{}",
        text(&o)
    );
    let failed_new = failed[0]["new_claim"]
        .as_str()
        .expect("new claim")
        .to_string();
    for ((old, new, _), volume) in PAIRS.iter().zip(&volumes) {
        if *new != failed_new {
            assert_adopted(&c, old, new, volume);
        }
    }
    // The same command finishes the failed pair.
    let o = adopt(&c, &["--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for ((old, new, _), volume) in PAIRS.iter().zip(&volumes) {
        assert_adopted(&c, old, new, volume);
    }
    assert_eq!(journal_states(&c), all_done());
}

/// One Deployment that mounts two claims, both on volumes of a default StorageClass.
const SHARED_OWNER: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shared}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: a-data, namespace: shared}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: b-data, namespace: shared}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shared}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      volumes:
      - {name: a, persistentVolumeClaim: {claimName: a-data}}
      - {name: b, persistentVolumeClaim: {claimName: b-data}}
      containers:
      - name: app
        image: busybox
        command: ["sh", "-c", "sleep 3600"]
        volumeMounts:
        - {name: a, mountPath: /a}
        - {name: b, mountPath: /b}
"#;

#[test]
fn an_owner_of_two_adopted_claims_comes_back_only_when_both_are_rolled_back() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(SHARED_OWNER);
    c.wait_for(
        &["deploy", "app", "-n", "shared"],
        "{.status.readyReplicas}",
        "1",
        Duration::from_secs(120),
    );
    let replicas =
        |c: &TestCluster| c.jsonpath(&["deploy", "app", "-n", "shared"], "{.spec.replicas}");
    let o = migrate(
        &c,
        &[
            "adopt",
            "a-data=a-new",
            "b-data=b-new",
            "-n",
            "shared",
            "--quiesce",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(replicas(&c), "0");
    // The Deployment still mounts b-data, which is adopted: scaling it up now would start a
    // pod on a claim that does not exist (a StatefulSet's would get a new, empty one).
    let o = migrate(&c, &["rollback", "a-new", "-n", "shared", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["pvc", "a-data", "-n", "shared"], "{.status.phase}"),
        "Bound"
    );
    assert_eq!(replicas(&c), "0", "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains("deployment/app") && said.contains("b-new"),
        "the rollback says why the owner stays down: {said}"
    );
    let o = migrate(&c, &["rollback", "b-new", "-n", "shared", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(replicas(&c), "1", "{}", text(&o));
    c.wait_for(
        &["deploy", "app", "-n", "shared"],
        "{.status.readyReplicas}",
        "1",
        Duration::from_secs(120),
    );
}
