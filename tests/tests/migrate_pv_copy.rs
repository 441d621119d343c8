//! `kubectl upgrade-migrate-pv copy` end to end: the Charmed Kubeflow MinIO flow on real files
//! (owners, modes, symlinks, hard links, sparse and large files, empty directories, names with
//! spaces and unicode), a MariaDB data directory copied and served again, and the refusals and
//! failures that must never report an unverified copy as done.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "kubeflow";

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-pv", args)
}

fn binary() -> PathBuf {
    upgrade_e2e::harness::plugin_binary("migrate-pv")
}

fn sh(c: &TestCluster, ns: &str, pod: &str, script: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.kubectl(&["exec", "-n", ns, pod, "--", "sh", "-c", script]);
        if r.code == 0 {
            return r.stdout;
        }
        assert!(Instant::now() < deadline, "{script}: {}", r.stderr);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Files of every kind a volume holds, written by the running MinIO pod.
const TREE: &str = r#"set -e
cd /data
mkdir -p bucket/objects "with space/ünïcödé" empty/nested
head -c 3000000 /dev/urandom > bucket/objects/large.bin
printf 'part' > bucket/objects/part.1
ln bucket/objects/part.1 bucket/objects/part.link1
ln bucket/objects/part.1 bucket/objects/part.link2
ln -s objects/part.1 bucket/relative-link
ln -s /data/bucket/objects/large.bin bucket/absolute-link
ln -s does-not-exist bucket/dangling
truncate -s 200M bucket/sparse.img
printf 'tail' >> bucket/sparse.img
printf 'x' > "with space/ünïcödé/naïve file.txt"
chown 1000:1000 bucket/objects/part.1
chown 999:998 bucket/objects/large.bin
chmod 0600 bucket/objects/large.bin
chmod 4755 bucket/relative-link 2>/dev/null || true
chmod 1777 empty
touch -d '2021-09-03 03:56:13' bucket/objects/large.bin
touch -h -d '2020-01-01 00:00:00' bucket/relative-link
"#;

/// What a pod sees of the tree: path, type, mode, owner, size, links, target, mtime.
const STAT: &str =
    r#"cd "$1" && find . -mindepth 1 -printf '%p|%y|%m|%U:%G|%s|%n|%l|%T@\n' | sort"#;

#[test]
fn kubeflow_minio_flow_retain_copy_verify_serve_and_clean_up() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    sh(&c, NS, "minio-0", TREE);
    let before = sh(
        &c,
        NS,
        "minio-0",
        &format!("sh -c '{}' sh /data", STAT.replace('\'', "'\\''")),
    );
    let old_volume = c.jsonpath(
        &["pvc", "minio-data-minio-0", "-n", NS],
        "{.spec.volumeName}",
    );

    // 1. Keep the volume whatever happens to its claim.
    let o = migrate(&c, &["retain", "minio-data-minio-0", "-n", NS]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(
            &["pv", &old_volume],
            "{.spec.persistentVolumeReclaimPolicy}"
        ),
        "Retain"
    );

    // 2. A copy while MinIO runs is refused without --quiesce or --allow-live.
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "minio-data-v17",
            "-n",
            NS,
            "--create",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("pass --quiesce"), "{}", text(&o));
    assert!(
        c.kubectl(&["get", "pvc", "minio-data-v17", "-n", NS]).code != 0,
        "a refusal creates nothing"
    );

    // 3. Quiesce, copy, verify with checksums; MinIO comes back afterwards.
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "minio-data-v17",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--verify=checksum",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report json");
    assert_eq!(report["verified"], true, "{report:#}");
    assert_eq!(report["verify"], "checksum");
    assert_eq!(report["files"], 6, "{report:#}");
    assert_eq!(report["symlinks"], 3, "{report:#}");
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "owner scaled back"
    );
    assert!(
        c.kubectl(&["get", "pod", "migrate-pv-minio-data-v17", "-n", NS])
            .code
            != 0,
        "the migration pod is gone"
    );

    // 4. The new MinIO: a pod on the new claim sees exactly the old tree.
    c.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: minio-v17, namespace: kubeflow}
spec:
  containers:
  - {name: minio, image: "minio/minio:RELEASE.2023-03-13T19-46-17Z", command: [sleep, "3600"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: minio-data-v17}}
"#,
    );
    let after = sh(
        &c,
        NS,
        "minio-v17",
        &format!("sh -c '{}' sh /data", STAT.replace('\'', "'\\''")),
    );
    assert_eq!(
        after, before,
        "owners, modes, sizes, links, targets and mtimes all carried over"
    );
    let blocks = sh(&c, NS, "minio-v17", "stat -c %b /data/bucket/sparse.img");
    assert!(
        blocks.trim().parse::<u64>().expect("blocks") < 1024,
        "the sparse file stayed sparse: {blocks}"
    );

    // 5. Clean up the old claim and volume: allowed now that a verified copy is recorded.
    c.kubectl(&["delete", "sts", "minio", "-n", NS]).ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !migrate(&c, &["cleanup", "minio-data-minio-0", "-n", NS, "--yes"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "cleanup never succeeded");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        c.kubectl(&["get", "pvc", "minio-data-minio-0", "-n", NS])
            .code
            != 0
    );
    assert!(c.kubectl(&["get", "pv", &old_volume]).code != 0);
}

#[test]
fn cleanup_without_a_verified_copy_is_refused() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    // The StatefulSet controller creates the claim; wait until it is there and Bound.
    c.wait_for(
        &["pvc", "minio-data-minio-0", "-n", NS],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(60),
    );
    let o = migrate(&c, &["cleanup", "minio-data-minio-0", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no verified copy of pvc/minio-data-minio-0"),
        "{}",
        text(&o)
    );
    assert_eq!(
        c.jsonpath(&["pvc", "minio-data-minio-0", "-n", NS], "{.status.phase}"),
        "Bound"
    );
}

#[test]
fn a_destination_too_small_is_refused_before_any_byte_is_copied() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    sh(
        &c,
        NS,
        "minio-0",
        "head -c 40000000 /dev/urandom > /data/big.bin",
    );
    c.kubectl(&["scale", "sts/minio", "-n", NS, "--replicas=0"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.kubectl(&["get", "pod", "minio-0", "-n", NS]).code == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "small",
            "-n",
            NS,
            "--create",
            "--size",
            "10Mi",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("pvc/small is too small"), "{}", text(&o));
    assert!(
        c.kubectl(&["get", "pod", "migrate-pv-small", "-n", NS])
            .code
            != 0,
        "the migration pod is removed on failure"
    );
}

#[test]
fn a_file_changed_during_a_live_copy_fails_verification_and_names_it() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    sh(
        &c,
        NS,
        "minio-0",
        "head -c 20000000 /dev/urandom > /data/blob.bin",
    );
    // A writer that keeps appending while the copy runs.
    let kubeconfig = c.kubeconfig.clone();
    let writer = std::thread::spawn(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["exec", "-n", NS, "minio-0", "--", "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo $i >> /data/live.log; i=$((i+1)); sleep 0.02; done"])
            .output()
    });
    std::thread::sleep(Duration::from_millis(300));
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "snapshot",
            "-n",
            NS,
            "--create",
            "--allow-live",
            "--yes",
        ],
    );
    let _ = writer.join();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a difference is a finding, never success: {}",
        text(&o)
    );
    assert!(text(&o).contains("NOT verified"), "{}", text(&o));
    assert!(
        text(&o).contains("live.log"),
        "names the file: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("not point-in-time"),
        "the live copy was announced: {}",
        text(&o)
    );
    let status = migrate(&c, &["status", "-n", NS, "-o", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(status["operations"][0]["state"], "differs");
    let o = migrate(&c, &["cleanup", "minio-data-minio-0", "-n", NS, "--yes"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an unverified copy does not allow cleanup: {}",
        text(&o)
    );
}

#[test]
fn volumes_pinned_to_different_nodes_are_refused_up_front() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.apply(
        r#"
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-a}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  hostPath: {path: /tmp/local-a}
  claimRef: {namespace: kubeflow, name: on-a}
  nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-a]}]}]}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-b}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  hostPath: {path: /tmp/local-b}
  claimRef: {namespace: kubeflow, name: on-b}
  nodeAffinity: {required: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node-b]}]}]}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: on-a, namespace: kubeflow}
spec: {accessModes: [ReadWriteOnce], storageClassName: local, volumeName: local-a, resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: on-b, namespace: kubeflow}
spec: {accessModes: [ReadWriteOnce], storageClassName: local, volumeName: local-b, resources: {requests: {storage: 1Gi}}}
"#,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.jsonpath(&["pvc", "on-b", "-n", NS], "{.status.phase}") != "Bound"
        || c.jsonpath(&["pvc", "on-a", "-n", NS], "{.status.phase}") != "Bound"
    {
        assert!(Instant::now() < deadline, "claims did not bind");
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = migrate(&c, &["copy", "on-a", "on-b", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no node can mount both volumes"),
        "{}",
        text(&o)
    );
    assert!(
        c.kubectl(&["get", "pod", "migrate-pv-on-b", "-n", NS]).code != 0,
        "nothing was created"
    );
}

/// A copy killed while its owners are scaled down: running it again copies, verifies and
/// brings the owners back to the replicas they had before the first run.
#[test]
fn a_killed_quiesced_copy_run_again_restores_the_owners() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    sh(
        &c,
        NS,
        "minio-0",
        "head -c 30000000 /dev/urandom > /data/blob.bin && mkdir -p /data/d && echo a > /data/d/a",
    );
    // Slow the exec streams' pod reads so the kill lands after the scale-down.
    c.guard
        .faults()
        .delay_next("pods", 30, Duration::from_millis(100));
    let mut child = Command::new(binary())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "copy",
            "minio-data-minio-0",
            "minio-copy",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--yes",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("plugin starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}") != "0" {
        assert!(Instant::now() < deadline, "the owner was never scaled down");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "0",
        "killed while quiesced"
    );
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
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
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
}

/// The migration pod's exec streams are cut in the middle of the copy: the command fails
/// without claiming success, removes the pod, brings the owner back, and a second run
/// completes and verifies.
#[test]
fn a_copy_whose_pod_connection_breaks_fails_cleanly_and_can_be_run_again() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    sh(
        &c,
        NS,
        "minio-0",
        "head -c 200000000 /dev/urandom > /data/blob.bin",
    );
    // Slow the first exec (the space check) so that the cut lands during the copy stream.
    let faults = c.guard.faults();
    let child = Command::new(binary())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "copy",
            "minio-data-minio-0",
            "broken",
            "-n",
            NS,
            "--create",
            "--quiesce",
            "--yes",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("plugin starts");
    // Wait until the migration pod runs, then cut every exec stream a few times.
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.jsonpath(&["pod", "migrate-pv-broken", "-n", NS], "{.status.phase}") != "Running" {
        assert!(Instant::now() < deadline, "the migration pod never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..40 {
        faults.cut_exec_streams();
        std::thread::sleep(Duration::from_millis(25));
    }
    let o = child.wait_with_output().expect("plugin ends");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        !text(&o).contains("verified:"),
        "no success without verification: {}",
        text(&o)
    );
    assert!(
        c.kubectl(&["get", "pod", "migrate-pv-broken", "-n", NS])
            .code
            != 0,
        "the pod is removed on failure"
    );
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "broken",
            "-n",
            NS,
            "--quiesce",
            "--verify=checksum",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("verified:"), "{}", text(&o));
}

/// Across namespaces each side gets its own pod and the archive streams through the plugin;
/// the result is verified the same way.
#[test]
fn a_copy_into_another_namespace_streams_between_two_pods_and_verifies() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.kubectl(&["create", "namespace", "kubeflow-v17"]).ok();
    sh(
        &c,
        NS,
        "minio-0",
        "cd /data && mkdir -p b && head -c 5000000 /dev/urandom > b/blob && ln b/blob b/hard && ln -s blob b/soft && truncate -s 64M b/sparse && chown 1000:1000 b/blob && chmod 0640 b/blob",
    );
    let o = migrate(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "minio-data",
            "-n",
            NS,
            "--to-namespace",
            "kubeflow-v17",
            "--create",
            "--quiesce",
            "--verify=checksum",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report json");
    assert_eq!(report["verified"], true, "{report:#}");
    assert_eq!(report["files"], 3, "{report:#}");
    assert_eq!(
        c.jsonpath(
            &["pvc", "minio-data", "-n", "kubeflow-v17"],
            "{.status.phase}"
        ),
        "Bound"
    );
    for (ns, pod) in [
        (NS, "migrate-pv-minio-data-source"),
        ("kubeflow-v17", "migrate-pv-minio-data"),
    ] {
        assert!(
            c.kubectl(&["get", "pod", pod, "-n", ns]).code != 0,
            "pod/{pod} is removed"
        );
    }
    assert_eq!(
        c.jsonpath(&["sts", "minio", "-n", NS], "{.spec.replicas}"),
        "1",
        "the owner is back"
    );
}
