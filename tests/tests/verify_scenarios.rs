//! `kubectl upgrade-verify` end to end on each seed scenario: record, upgrade (apply the
//! target version's manifests, as the application's own tooling would), then `wait` until the
//! verification passes — and, where the seed's guide warns of a loss, that the loss is named.

mod verify_support;

use serde_json::json;
use upgrade_e2e::harness::TestCluster;
use verify_support::{differences, record, settled, until_difference, verify, wait};

/// The target manifests of a new version, as the application's tooling applies them: each
/// workload of `kind` in `ns` with `from` replaced by `to` in its images and labels.
fn target_manifests(c: &TestCluster, ns: &str, kind: &str, from: &str, to: &str) -> String {
    let list = c.get_json(&[kind, "-n", ns]);
    let mut docs = Vec::new();
    for item in list["items"].as_array().expect("items") {
        let mut text = serde_json::to_string(&json!({
            "apiVersion": item["apiVersion"], "kind": item["kind"],
            "metadata": {"name": item["metadata"]["name"], "namespace": ns, "labels": item["metadata"]["labels"]},
            "spec": item["spec"],
        }))
        .expect("json");
        text = text.replace(from, to);
        docs.push(text);
    }
    docs.join("\n---\n")
}

#[test]
fn fate_1_7_2_to_1_8_0_on_existing_claims_verifies_and_a_lost_volume_is_named() {
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    let b = record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    assert_eq!(b["version"], "1.7.2-release");
    assert_eq!(b["volumes"].as_array().map(Vec::len), Some(5));
    // Before the upgrade, verifying against the target names every versioned component.
    let (code, report) = verify(&c, &["-n", "fate-9999", "--to", "v1.8.0"]);
    assert_eq!(code, 1, "{report:#}");
    assert!(differences(&report).contains(&("component-version".into(), "deploy/python".into())));

    c.apply(&target_manifests(
        &c,
        "fate-9999",
        "deploy",
        "1.7.2-release",
        "1.8.0-release",
    ));
    let (code, report) = wait(&c, &["-n", "fate-9999", "--to", "v1.8.0"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "verified");
    assert_eq!(report["version"], "1.8.0-release");
    assert_eq!(report["checked"]["volumes"], 5);

    // The python volume goes away (claim deleted, then the Retained volume).
    c.kubectl(&["scale", "deploy/python", "-n", "fate-9999", "--replicas=0"])
        .ok();
    c.kubectl(&[
        "delete",
        "pvc",
        "python-data",
        "-n",
        "fate-9999",
        "--wait=true",
    ])
    .ok();
    c.kubectl(&["delete", "pv", "fate-9999-python-data", "--wait=true"])
        .ok();
    let (d, _) = until_difference(
        &c,
        &["-n", "fate-9999", "--to", "v1.8.0"],
        "volume-lost",
        "pv/fate-9999-python-data",
    );
    assert!(
        d["recorded"]
            .as_str()
            .is_some_and(|r| r.ends_with("bound to pvc fate-9999/python-data")),
        "{d:#}"
    );
    assert_eq!(d["now"], "gone");
}

/// FATE v1.9.0's StatefulSets as the chart renders them on a storage class (abridged to what
/// the check and the verification read): claim templates instead of the Deployments' claims.
const FATE_1_9_0: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql, namespace: fate-9999, labels: {fateMoudle: mysql, chart: fate, release: fate-9999}}
spec:
  serviceName: mysql
  replicas: 1
  selector: {matchLabels: {fateMoudle: mysql, name: fate-9999}}
  template:
    metadata: {labels: {fateMoudle: mysql, name: fate-9999}}
    spec:
      containers:
      - name: mysql
        image: mysql:8.0.28
        env: [{name: MYSQL_ALLOW_EMPTY_PASSWORD, value: "1"}, {name: MYSQL_DATABASE, value: eggroll_meta}]
        volumeMounts: [{name: data, mountPath: /var/lib/mysql}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], storageClassName: nfs-client, resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: python, namespace: fate-9999, labels: {fateMoudle: python, chart: fate, release: fate-9999}}
spec:
  serviceName: python
  replicas: 1
  selector: {matchLabels: {fateMoudle: python, name: fate-9999}}
  template:
    metadata: {labels: {fateMoudle: python, name: fate-9999}}
    spec:
      containers:
      - name: python
        image: federatedai/python:1.9.0-release
        volumeMounts: [{name: python-data, mountPath: /data/projects/fate/jobs}]
  volumeClaimTemplates:
  - metadata: {name: python-data}
    spec: {accessModes: [ReadWriteOnce], storageClassName: nfs-client, resources: {requests: {storage: 1Gi}}}
"#;

#[test]
fn fate_1_8_0_to_1_9_0_on_a_storage_class_without_adoption_names_the_volumes_left_behind() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    let b = record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    let mysql = b["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["claim"] == "mysql-data"))
        .expect("mysql-data recorded")
        .clone();
    let python = b["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["claim"] == "python-data"))
        .expect("python-data recorded")
        .clone();
    // The chart's upgrade as KubeFATE runs it: the Deployments go, StatefulSets come with
    // claims of their own; Helm deletes the old claims, and their Delete volumes with them.
    c.kubectl(&[
        "delete",
        "deploy",
        "mysql",
        "python",
        "-n",
        "fate-9999",
        "--wait=true",
    ])
    .ok();
    c.apply(FATE_1_9_0);
    c.kubectl(&[
        "delete",
        "pvc",
        "mysql-data",
        "python-data",
        "-n",
        "fate-9999",
        "--wait=true",
    ])
    .ok();
    // The volume controller reclaims the two volumes one after the other: wait for each.
    let pv = |v: &serde_json::Value| format!("pv/{}", v["volume"].as_str().expect("volume"));
    until_difference(&c, &["-n", "fate-9999"], "volume-lost", &pv(&mysql));
    let (_, report) = until_difference(&c, &["-n", "fate-9999"], "volume-lost", &pv(&python));
    let lost: Vec<String> = differences(&report)
        .into_iter()
        .filter(|(code, _)| code == "volume-lost")
        .map(|(_, object)| object)
        .collect();
    assert!(
        lost.contains(&format!("pv/{}", mysql["volume"].as_str().expect("volume"))),
        "{report:#}"
    );
    assert_eq!(lost.len(), 2, "{report:#}");
}

#[test]
fn kubeflow_minio_1_6_to_1_7_verifies_on_the_same_claim() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    settled(&c, "kubeflow");
    let b = record(&c, &["-n", "kubeflow", "--profile", "kubeflow"]);
    assert_eq!(b["version"], "1.6");
    c.apply(&target_manifests(
        &c,
        "kubeflow",
        "sts",
        "\"app.kubernetes.io/version\":\"1.6\"",
        "\"app.kubernetes.io/version\":\"1.7\"",
    ));
    let (code, report) = wait(&c, &["-n", "kubeflow", "--to", "1.7"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["components"][0]["old"], "1.6");
    assert_eq!(report["components"][0]["new"], "1.7");
}

#[test]
fn rok_v1_to_v2_waits_for_the_upgrade_job_and_the_cluster_s_health() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    settled(&c, "rok");
    let b = record(&c, &["-n", "rok", "--profile", "rok"]);
    assert_eq!(b["version"], "v1.5.3");
    assert_eq!(b["customResources"][0]["health"]["status.health"], "OK");
    for ns in ["rok", "rok-system"] {
        c.apply(&target_manifests(&c, ns, "sts", ":v1.5.3", ":v2.0.0"));
    }
    // The operator's upgrade Job, and the cluster reporting the new version.
    c.apply(
        r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rok-upgrade-x7k2p", "namespace": "rok"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
              "containers": [{"name": "upgrade", "image": "gcr.io/arrikto/rok-upgrade:v2.0.0", "command": ["true"]}]}}}}"#,
    );
    c.kubectl(&[
        "patch",
        "rokcluster",
        "rok",
        "-n",
        "rok",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"version": "v2.0.0"}}"#,
    ])
    .ok();
    let (code, report) = wait(&c, &["-n", "rok", "--to", "v2"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["checked"]["jobs"], 1);
    assert_eq!(report["version"], "v2.0.0");

    // An unhealthy custom resource is named with both values.
    c.kubectl(&[
        "patch",
        "rokcluster",
        "rok",
        "-n",
        "rok",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"health": "Degraded", "readyMembers": 0}}"#,
    ])
    .ok();
    let (code, report) = verify(&c, &["-n", "rok", "--to", "v2"]);
    assert_eq!(code, 1, "{report:#}");
    let health: Vec<(String, String, String)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter(|d| d["code"] == "custom-resource-unhealthy")
        .map(|d| {
            (
                d["object"].as_str().unwrap_or_default().into(),
                d["recorded"].as_str().unwrap_or_default().into(),
                d["now"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        health,
        [
            (
                "RokCluster/rok".to_string(),
                "OK".to_string(),
                "Degraded".to_string()
            ),
            (
                "RokCluster/rok".to_string(),
                "1".to_string(),
                "0".to_string()
            ),
        ]
    );

    // A failed upgrade Job is named too.
    c.apply(
        r#"{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "rok-upgrade-retry", "namespace": "rok"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
              "containers": [{"name": "upgrade", "image": "gcr.io/arrikto/rok-upgrade:v2.0.0", "command": ["false"]}]}}}}"#,
    );
    until_difference(
        &c,
        &["-n", "rok", "--to", "v2"],
        "job-failed",
        "job/rok-upgrade-retry",
    );
}

#[test]
fn foundationdb_patch_upgrade_verifies_once_reconciled_and_an_unavailable_cluster_is_named() {
    let c = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    let b = record(&c, &["-n", "default", "--profile", "foundationdb"]);
    assert_eq!(b["version"], "7.1.33");
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"spec": {"version": "7.1.40"}}"#,
    ])
    .ok();
    let (code, report) = wait(&c, &["-n", "default", "--to", "7.1.40"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["version"], "7.1.40");
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "-n",
        "default",
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/status/processGroups/0/processGroupConditions/-", "value": {"type": "MissingProcesses", "timestamp": 1700000001}},
              {"op": "add", "path": "/status/processGroups/1/processGroupConditions/-", "value": {"type": "MissingProcesses", "timestamp": 1700000001}}]"#,
    ])
    .ok();
    // Two of the three coordinators lose their processes: the operator reports the database
    // unavailable (no quorum).
    let (d, _) = until_difference(
        &c,
        &["-n", "default", "--to", "7.1.40"],
        "custom-resource-unhealthy",
        "FoundationDBCluster/sample",
    );
    assert_eq!(
        (d["recorded"].as_str(), d["now"].as_str()),
        (Some("true"), Some("false"))
    );
}
