//! `kubectl upgrade-migrate-pv cleanup` end to end: the source claim and its volume are deleted
//! only while the verified copy still exists as recorded, no pod mounts the source, and the
//! source still holds exactly what was verified. Every refusal exits 1 and changes nothing.

use std::process::Output;
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "kubeflow";
const SOURCE: &str = "minio-data-minio-0";

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-pv", args)
}

fn sh(c: &TestCluster, pod: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.kubectl(&["exec", "-n", NS, pod, "--", "sh", "-c", script]);
        if r.code == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{script}: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn scale_minio(c: &TestCluster, replicas: &str) {
    c.kubectl(&[
        "scale",
        "sts/minio",
        "-n",
        NS,
        &format!("--replicas={replicas}"),
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let gone = c.kubectl(&["get", "pod", "minio-0", "-n", NS]).code != 0;
        let running = c.jsonpath(&["pod", "minio-0", "-n", NS], "{.status.phase}") == "Running";
        if (replicas == "0" && gone) || (replicas != "0" && running) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "minio never reached {replicas} replicas"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// MinIO with a file on its claim, copied with --quiesce into `minio-copy` and verified; MinIO
/// runs again afterwards. Returns the source volume's name.
fn copied(c: &TestCluster) -> String {
    sh(
        c,
        "minio-0",
        "mkdir -p /data/bucket && echo before > /data/bucket/a",
    );
    let o = migrate(
        c,
        &[
            "copy",
            SOURCE,
            "minio-copy",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("verified:"), "{}", text(&o));
    scale_minio(c, "1");
    c.jsonpath(&["pvc", SOURCE, "-n", NS], "{.spec.volumeName}")
}

fn assert_untouched(c: &TestCluster, volume: &str) {
    assert_eq!(
        c.jsonpath(&["pvc", SOURCE, "-n", NS], "{.metadata.deletionTimestamp}"),
        "",
        "the source claim is not being deleted"
    );
    assert_eq!(
        c.jsonpath(&["pvc", SOURCE, "-n", NS], "{.status.phase}"),
        "Bound"
    );
    assert_eq!(c.jsonpath(&["pv", volume], "{.metadata.name}"), volume);
}

/// Issue 7, item 1: a claim a running pod mounts is never put up for deletion, and a source
/// written to after its verified copy is not deleted until it is copied again.
#[test]
fn cleanup_refuses_a_mounted_claim_and_a_source_changed_since_its_copy() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    let volume = copied(&c);

    // MinIO is back and mounts the claim: refused before any change.
    let o = migrate(
        &c,
        &["cleanup", SOURCE, "-n", NS, "--yes", "--timeout", "10s"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is used by pod/minio-0"), "{}", text(&o));
    assert_untouched(&c, &volume);

    // MinIO writes after the copy, then stops: the copy no longer holds everything.
    sh(
        &c,
        "minio-0",
        "echo after > /data/bucket/written-after-the-copy",
    );
    scale_minio(&c, "0");
    let o = migrate(&c, &["cleanup", SOURCE, "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("changed since its copy to pvc/minio-copy"),
        "{}",
        text(&o)
    );
    assert_untouched(&c, &volume);
    assert_eq!(
        c.kubectl(&[
            "get",
            "pod",
            "-n",
            NS,
            "-l",
            "app.kubernetes.io/component=migrate-pv",
            "-o",
            "name"
        ])
        .stdout,
        "",
        "the listing pod is removed"
    );

    // Copied again, the cleanup goes ahead.
    let o = migrate(&c, &["copy", SOURCE, "minio-copy", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = migrate(&c, &["cleanup", SOURCE, "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Issue 7, item 7: the plan says what becomes of the data behind a Delete volume.
    assert!(
        text(&o).contains(&format!(
            "delete pv/{volume} and its data on the storage (reclaim policy Delete)"
        )),
        "{}",
        text(&o)
    );
    assert!(c.kubectl(&["get", "pvc", SOURCE, "-n", NS]).code != 0);
    assert!(c.kubectl(&["get", "pv", &volume]).code != 0);
}

/// Issue 7, item 2: once the destination of the verified copy is gone, cleanup refuses and
/// names it, and status marks the copy stale.
#[test]
fn cleanup_refuses_once_the_verified_copy_is_gone_and_status_marks_it_stale() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    let volume = copied(&c);
    scale_minio(&c, "0");
    c.kubectl(&["delete", "pvc", "minio-copy", "-n", NS, "--wait=true"])
        .ok();
    let o = migrate(&c, &["cleanup", SOURCE, "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(
            "pvc/minio-copy in namespace kubeflow, which holds the verified copy, no longer exists"
        ),
        "{}",
        text(&o)
    );
    assert_untouched(&c, &volume);
    let o = migrate(&c, &["status", "-n", NS, "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let copy = &status["operations"][0];
    assert!(
        copy["state"]
            .as_str()
            .unwrap_or_default()
            .starts_with("stale: "),
        "{status:#}"
    );

    // A claim of the same name made anew is not the copy either.
    c.apply(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: minio-copy, namespace: kubeflow}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n",
    );
    c.wait_for(
        &["pvc", "minio-copy", "-n", NS],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(30),
    );
    let o = migrate(&c, &["cleanup", SOURCE, "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("was deleted and created again"),
        "{}",
        text(&o)
    );
    assert_untouched(&c, &volume);
}
