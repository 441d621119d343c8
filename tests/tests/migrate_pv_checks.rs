//! `kubectl upgrade-migrate-pv`: what is checked before the first change. Bad input exits 2
//! and changes nothing — not a replica, not a journal entry — with or without `--dry-run`.

use std::process::Output;
use std::time::Duration;

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "kubeflow";
const SOURCE: &str = "minio-data-minio-0";

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-pv", args)
}

/// The cluster with MinIO running on its claim; returns the StatefulSet's generation, which a
/// scale (down or up) would change.
fn started() -> (TestCluster, String) {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.wait_for(
        &["pod", "minio-0", "-n", NS],
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    );
    let generation = c.jsonpath(&["sts", "minio", "-n", NS], "{.metadata.generation}");
    (c, generation)
}

fn assert_nothing_changed(c: &TestCluster, generation: &str) {
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.metadata.generation}"),
        generation,
        "the owner was never scaled"
    );
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1"
    );
    assert!(
        c.kubectl(&["get", "configmap", "kubectl-upgrade-migrate-pv", "-n", NS])
            .code
            != 0,
        "nothing was journalled"
    );
    assert_eq!(
        c.kubectl(&["get", "pvc", "-n", NS, "-o", "name"])
            .stdout
            .trim(),
        format!("persistentvolumeclaim/{SOURCE}"),
        "no claim was created"
    );
}

/// Issue 7, items 5 and 10: a destination namespace or storage class that does not exist is
/// found before the owners are scaled down, and a dry run finds it too.
#[test]
fn a_missing_namespace_or_class_is_refused_before_anything_is_scaled_even_in_a_dry_run() {
    let (c, generation) = started();
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec![
            "copy",
            SOURCE,
            "x",
            "-n",
            NS,
            "--to-namespace",
            "nosuchns",
            "--create",
            "--quiesce",
            "--yes",
        ];
        args.extend_from_slice(extra);
        let o = migrate(&c, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("namespaces \"nosuchns\" not found"),
            "{}",
            text(&o)
        );
        assert_nothing_changed(&c, &generation);
    }
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec![
            "copy",
            SOURCE,
            "x",
            "-n",
            NS,
            "--create",
            "--storage-class",
            "nosuch",
            "--quiesce",
            "--yes",
        ];
        args.extend_from_slice(extra);
        let o = migrate(&c, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("storageclasses \"nosuch\" not found"),
            "{}",
            text(&o)
        );
        assert_nothing_changed(&c, &generation);
    }
}

/// Issue 7, item 6: a claim copied onto itself and an empty label selector are bad input.
#[test]
fn copying_a_claim_onto_itself_and_an_empty_selector_are_refused() {
    let (c, generation) = started();
    for args in [
        &["copy", SOURCE, SOURCE, "-n", NS, "--quiesce", "--yes"][..],
        &[
            "copy",
            SOURCE,
            SOURCE,
            "-n",
            NS,
            "--to-namespace",
            NS,
            "--quiesce",
            "--yes",
        ][..],
    ] {
        let o = migrate(&c, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("the same claim"), "{}", text(&o));
        assert_nothing_changed(&c, &generation);
    }
    let volume = c.jsonpath(&["pvc", SOURCE, "-n", NS], "{.spec.volumeName}");
    let o = migrate(&c, &["retain", "-l", "", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--all"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete",
        "nothing was retained"
    );
    let o = migrate(&c, &["retain", "--all", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Retain"
    );
}

/// Issue 7, item 9: status shows where a copy went and suggests what is true now — cleanup
/// after a verified copy, a re-run that keeps --to-namespace, nothing after restore-policy —
/// and plans name the namespace of what they create.
#[test]
fn status_names_the_namespaces_and_suggests_what_is_true_now() {
    let (c, _) = started();
    c.kubectl(&["create", "namespace", "kubeflow-v17"]).ok();
    c.kubectl(&["scale", "sts/minio", "-n", NS, "--replicas=0"])
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while c.kubectl(&["get", "pod", "minio-0", "-n", NS]).code == 0 {
        assert!(std::time::Instant::now() < deadline, "minio-0 never went");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = migrate(
        &c,
        &[
            "copy",
            SOURCE,
            "minio-copy",
            "-n",
            NS,
            "--to-namespace",
            "kubeflow-v17",
            "--create",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("create pvc/minio-copy in namespace kubeflow-v17"),
        "{}",
        text(&o)
    );
    let o = migrate(&c, &["status", "-n", NS, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let copy = &status["operations"][0];
    assert_eq!(
        copy["claims"],
        format!("{SOURCE} → kubeflow-v17/minio-copy"),
        "{status:#}"
    );
    assert_eq!(copy["state"], "verified", "{status:#}");
    assert_eq!(
        copy["next"],
        format!("kubectl upgrade-migrate-pv cleanup {SOURCE} -n {NS}"),
        "{status:#}"
    );

    let o = migrate(&c, &["adopt", SOURCE, "data-new-0", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = migrate(&c, &["status", "-n", NS, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let adopt = status["operations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|o| o["operation"] == "adopt")
        .expect("adopt")
        .clone();
    assert!(
        adopt["next"]
            .as_str()
            .unwrap_or_default()
            .contains("restore-policy"),
        "{status:#}"
    );
    let o = migrate(&c, &["restore-policy", "--all", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = migrate(&c, &["status", "-n", NS, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let adopt = status["operations"]
        .as_array()
        .expect("list")
        .iter()
        .find(|o| o["operation"] == "adopt")
        .expect("adopt")
        .clone();
    assert_eq!(adopt["next"], "-", "the policy is back: {status:#}");
}

/// Issue 7, item 8: a destination whose class has no provisioner never binds; the failure names
/// the claim, its phase and its latest events instead of only the pod that never ran.
#[test]
fn a_destination_that_never_binds_is_named_with_its_phase_and_events() {
    let (c, _) = started();
    c.apply(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: manual}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: Immediate\n",
    );
    let o = migrate(
        &c,
        &[
            "copy",
            SOURCE,
            "unbound",
            "-n",
            NS,
            "--create",
            "--storage-class",
            "manual",
            "--quiesce",
            "--yes",
            "--timeout",
            "8s",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("pvc/unbound is Pending"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
}

/// Issue 7, item 13: with `-o json` a mutating command ends with what was done — each step an
/// object with its outcome — not only the plan.
#[test]
fn json_output_of_a_mutating_command_ends_with_each_steps_outcome() {
    let (c, _) = started();
    let o = migrate(&c, &["retain", SOURCE, "-n", NS, "-o", "json", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    assert_eq!(doc["steps"][0]["action"], "set-policy", "{doc:#}");
    assert_eq!(doc["steps"][0]["outcome"], "done", "{doc:#}");
    let o = migrate(
        &c,
        &[
            "copy",
            SOURCE,
            "json-copy",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let steps = doc["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{doc:#}");
    assert!(
        steps
            .iter()
            .all(|s| s["outcome"] == "done" && s["description"].is_string()),
        "{doc:#}"
    );
    assert_eq!(doc["verified"], true);
}

/// Issue 8, item 12: a source claim that is not bound is named with its phase, once
/// ("pvc/pend is Pending, not Bound"), not "is not bound, not Bound".
#[test]
fn issue8_12_an_unbound_source_is_named_with_its_phase() {
    let (c, generation) = started();
    c.apply(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pend, namespace: kubeflow}\nspec:\n  storageClassName: nosuch\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
    );
    let o = migrate(&c, &["copy", "pend", "x", "-n", NS, "--create", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("pvc/pend is Pending, not Bound"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("not bound, not Bound"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.metadata.generation}"),
        generation,
        "the owner was never scaled"
    );
    assert!(
        c.kubectl(&["get", "pvc", "x", "-n", NS]).code != 0,
        "no destination was created"
    );
}

/// A destination claim with less room than the source's data is refused while the application
/// still runs: with `--quiesce` the data is measured before the owners are scaled down, not
/// after, when refusing would already have stopped the application for nothing.
#[test]
fn a_destination_too_small_is_refused_before_the_owners_are_stopped() {
    let (c, generation) = started();
    let put = c.kubectl(&[
        "exec",
        "-n",
        NS,
        "minio-0",
        "--",
        "sh",
        "-c",
        "head -c 3145728 /dev/urandom > /data/big && sync",
    ]);
    assert_eq!(put.code, 0, "{}", put.stderr);
    c.apply(
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: small, namespace: kubeflow}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: standard
  resources: {requests: {storage: 1Mi}}
"#,
    );
    c.wait_for(
        &["pvc", "small", "-n", NS],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(60),
    );
    let o = migrate(
        &c,
        &["copy", SOURCE, "small", "-n", NS, "--quiesce", "--yes"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pvc/small is too small"), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.metadata.generation}"),
        generation,
        "the owner was never scaled: {}",
        text(&o)
    );
}

/// A user's pod that happens to have the name of the copy's pod is never deleted: the copy is
/// refused before anything is stopped, in a dry run too.
#[test]
fn a_users_pod_with_the_copy_pods_name_is_left_alone() {
    let (c, generation) = started();
    c.apply(
        r#"apiVersion: v1
kind: Pod
metadata: {name: migrate-pv-x, namespace: kubeflow}
spec:
  containers:
  - {name: main, image: busybox, command: [sleep, infinity]}
"#,
    );
    let uid = c.jsonpath(&["pod", "migrate-pv-x", "-n", NS], "{.metadata.uid}");
    for extra in [&["--dry-run"][..], &[]] {
        let mut args = vec![
            "copy",
            SOURCE,
            "x",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--yes",
        ];
        args.extend_from_slice(extra);
        let o = migrate(&c, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("pod/migrate-pv-x exists and is not the pod this command starts"),
            "{}",
            text(&o)
        );
        assert_eq!(
            c.jsonpath(&["pod", "migrate-pv-x", "-n", NS], "{.metadata.uid}"),
            uid
        );
        assert_eq!(
            c.jsonpath(&["sts", "minio", "-n", NS], "{.metadata.generation}"),
            generation
        );
    }
}
