//! `kubectl upgrade-migrate-pv` end to end on the simulated cluster: the KubeFATE v1.8.0 →
//! v1.9.0 adoption with a real MariaDB data directory, interruption at every step and resume,
//! retried 409/500 answers, and the refusals that keep data safe.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "fate-9999";

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-pv", args)
}

fn binary() -> PathBuf {
    upgrade_e2e::harness::plugin_binary("migrate-pv")
}

fn mysql_volume(c: &TestCluster) -> String {
    c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.spec.volumeName}")
}

/// Stops the Deployment that mounts mysql-data and waits until its pods are gone.
fn stop_mysql(c: &TestCluster) {
    c.kubectl(&["scale", "deploy/mysql", "-n", NS, "--replicas=0"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c
        .kubectl(&[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "fateMoudle=mysql",
            "-o",
            "name",
        ])
        .stdout
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "mysql pods did not stop");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The StatefulSet FATE v1.9.0 runs MySQL as: its claim template `data` makes `data-mysql-0`.
const MYSQL_STS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: mysql, namespace: fate-9999, labels: {fateMoudle: mysql}}
spec:
  replicas: 1
  serviceName: mysql
  selector: {matchLabels: {fateMoudle: mysql}}
  template:
    metadata: {labels: {fateMoudle: mysql}}
    spec:
      containers:
      - name: mysql
        image: mysql:8.0.28
        env:
        - {name: MYSQL_ALLOW_EMPTY_PASSWORD, value: "1"}
        volumeMounts: [{name: data, mountPath: /var/lib/mysql}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: nfs-client
      resources: {requests: {storage: 1Gi}}
"#;

/// The adopted claim, its volume and the policy that keeps it, after a finished adoption.
fn assert_adopted(c: &TestCluster, volume: &str) {
    assert_eq!(
        c.jsonpath(&["pvc", "data-mysql-0", "-n", NS], "{.status.phase}"),
        "Bound"
    );
    assert_eq!(
        c.jsonpath(&["pvc", "data-mysql-0", "-n", NS], "{.spec.volumeName}"),
        volume,
        "the same volume: nothing copied"
    );
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
        c.kubectl(&["get", "pvc", "mysql-data", "-n", NS]).code != 0,
        "the old claim is gone"
    );
}

#[test]
fn kubefate_mysql_claim_becomes_the_statefulset_claim_and_keeps_its_tables() {
    assert!(
        std::path::Path::new("/usr/sbin/mariadbd").exists(),
        "MariaDB is needed (scripts/test installs mariadb-server)"
    );
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    // A row written by the running v1.8.0 MySQL.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.kubectl(&["exec", "-n", NS, "deploy/mysql", "--", "mysql", "-uroot", "eggroll_meta", "-e", "INSERT INTO server_node (name, host, port, node_type, status) VALUES ('written-before-upgrade', 'h', 1, 'T', 'HEALTHY')"]);
        if r.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mysql never answered: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Refused while the Deployment's pod mounts the claim; nothing changes.
    let o = migrate(
        &c,
        &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("pvc/mysql-data is used by pod/mysql-"),
        "{}",
        text(&o)
    );
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete",
        "a refusal changes nothing"
    );

    stop_mysql(&c);
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("mysql-sts.yaml");
    std::fs::write(&manifest, MYSQL_STS).expect("write manifest");
    let o = migrate(
        &c,
        &[
            "adopt",
            "mysql-data",
            "data-mysql-0",
            "-n",
            NS,
            "--for-statefulset",
            "mysql",
            "-f",
            manifest.to_str().expect("utf-8"),
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_adopted(&c, &volume);

    // The upgrade: v1.9.0's StatefulSet takes the existing claim as its own.
    c.kubectl(&["delete", "deploy/mysql", "-n", NS]).ok();
    c.apply(MYSQL_STS);
    let deadline = Instant::now() + Duration::from_secs(90);
    let rows = loop {
        let r = c.kubectl(&[
            "exec",
            "-n",
            NS,
            "mysql-0",
            "--",
            "mysql",
            "-uroot",
            "-N",
            "eggroll_meta",
            "-e",
            "SELECT name FROM server_node ORDER BY server_node_id",
        ]);
        if r.code == 0 {
            break r.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "mysql-0 never answered: {}",
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [
            "clustermanager",
            "nodemanager-0",
            "nodemanager-1",
            "written-before-upgrade"
        ]
    );
    assert_eq!(
        c.jsonpath(
            &["pod", "mysql-0", "-n", NS],
            "{.spec.volumes[0].persistentVolumeClaim.claimName}"
        ),
        "data-mysql-0"
    );

    // After the upgrade is verified: the original policy goes back on the bound volume.
    let o = migrate(&c, &["restore-policy", "--all", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
}

/// Each step fails once for good (403: not retried), then the same command finishes the job.
#[test]
fn adopt_stopped_at_every_step_resumes_to_the_same_end() {
    let steps: [(&str, &str); 5] = [
        ("persistentvolumes", "patch"),       // Retain
        ("persistentvolumeclaims", "delete"), // delete the old claim
        ("persistentvolumes", "patch"),       // pre-bind (the second patch)
        ("persistentvolumeclaims", "create"), // create the new claim
        ("persistentvolumeclaims", "get"),    // wait for Bound
    ];
    for (i, (resource, verb)) in steps.iter().enumerate() {
        let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
        let volume = mysql_volume(&c);
        stop_mysql(&c);
        if i == 2 {
            // Let the first patch (Retain) through, fail the second.
            c.guard.faults().add(upgrade_e2e::sim::FaultRule {
                resource: (*resource).into(),
                verb: Some((*verb).into()),
                remaining: 1,
                code: None,
                delay: Duration::ZERO,
            });
        }
        if i == 4 {
            // The claim reads before the wait: plan (new claim, old claim) and the delete wait.
            c.guard.faults().add(upgrade_e2e::sim::FaultRule {
                resource: (*resource).into(),
                verb: Some((*verb).into()),
                remaining: 4,
                code: None,
                delay: Duration::ZERO,
            });
        }
        c.guard.faults().fail_next(resource, Some(verb), 1, 403);
        let o = migrate(
            &c,
            &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
        );
        assert_ne!(
            o.status.code(),
            Some(0),
            "step {} should have stopped: {}",
            i + 1,
            text(&o)
        );
        assert!(
            text(&o).contains("run the same command again to continue")
                || text(&o).contains("Forbidden"),
            "{}",
            text(&o)
        );
        // Never a Released volume under Delete.
        let phase = c.jsonpath(&["pv", &volume], "{.status.phase}");
        let policy = c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}");
        assert!(
            !(phase == "Released" && policy == "Delete"),
            "step {}: Released under Delete",
            i + 1
        );
        let o = migrate(
            &c,
            &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "resume after step {}: {}",
            i + 1,
            text(&o)
        );
        assert_adopted(&c, &volume);
        let status = migrate(&c, &["status", "-n", NS, "-o", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout)
            .unwrap_or_else(|e| panic!("status after step {}: {e}: {}", i + 1, text(&status)));
        assert_eq!(
            status["operations"][0]["state"],
            "done",
            "status after step {}: {status:#}",
            i + 1
        );
    }
}

#[test]
fn conflicts_and_server_errors_are_retried() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    stop_mysql(&c);
    c.guard
        .faults()
        .fail_next("persistentvolumes", Some("patch"), 2, 409);
    c.guard
        .faults()
        .fail_next("persistentvolumeclaims", Some("create"), 2, 500);
    c.guard.faults().fail_next("configmaps", None, 1, 503);
    let o = migrate(
        &c,
        &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_adopted(&c, &volume);
}

#[test]
fn killed_at_any_moment_and_run_again_ends_adopted() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    stop_mysql(&c);
    // Slow every volume and claim request so that kills land between and inside steps.
    for resource in ["persistentvolumes", "persistentvolumeclaims"] {
        c.guard
            .faults()
            .delay_next(resource, 40, Duration::from_millis(150));
    }
    for kill_after_ms in [100u64, 400, 700, 1000, 1300, 1600] {
        let mut child = Command::new(binary())
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("plugin starts");
        std::thread::sleep(Duration::from_millis(kill_after_ms));
        let _ = child.kill();
        let _ = child.wait();
        let phase = c.jsonpath(&["pv", &volume], "{.status.phase}");
        let policy = c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}");
        assert!(
            !(phase == "Released" && policy == "Delete"),
            "killed after {kill_after_ms} ms: Released under Delete"
        );
        assert!(
            c.kubectl(&["get", "pv", &volume]).code == 0,
            "the volume survives every kill"
        );
    }
    let o = migrate(
        &c,
        &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_adopted(&c, &volume);
}

#[test]
fn rollback_puts_the_volume_back_under_its_old_claim() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    stop_mysql(&c);
    assert_eq!(
        migrate(
            &c,
            &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"]
        )
        .status
        .code(),
        Some(0)
    );
    let o = migrate(&c, &["rollback", "data-mysql-0", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.spec.volumeName}"),
        volume
    );
    assert_eq!(
        c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.status.phase}"),
        "Bound"
    );
    assert!(c.kubectl(&["get", "pvc", "data-mysql-0", "-n", NS]).code != 0);
}

/// The claim as a rollback must bring it back: labels, annotations (without the binder's own),
/// and the spec fields a user or chart sets.
fn claim_facts(c: &TestCluster, name: &str) -> serde_json::Value {
    let claim = c.get_json(&["pvc", name, "-n", NS]);
    let mut annotations = claim["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.retain(|k, _| !k.starts_with("pv.kubernetes.io/") && !k.contains("storage-provisioner"));
    }
    serde_json::json!({
        "labels": claim["metadata"]["labels"],
        "annotations": annotations,
        "accessModes": claim["spec"]["accessModes"],
        "resources": claim["spec"]["resources"],
        "storageClassName": claim["spec"]["storageClassName"],
        "volumeMode": claim["spec"]["volumeMode"],
        "volumeName": claim["spec"]["volumeName"],
    })
}

/// Issue 7, item 3: a rollback brings the old claim back as it was — Helm's ownership labels and
/// annotations, the application's labels, its spec — and the volume names the claim it was
/// adopted from.
#[test]
fn rollback_restores_the_claim_with_its_labels_annotations_and_spec() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    let before = claim_facts(&c, "mysql-data");
    assert_eq!(
        before["labels"]["app.kubernetes.io/managed-by"], "Helm",
        "{before:#}"
    );
    stop_mysql(&c);
    let o = migrate(
        &c,
        &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(
            &["pv", &volume],
            "{.metadata.annotations.upgrade\\.kubectl-upgrade\\.dev/adopted-from}"
        ),
        "fate-9999/mysql-data",
        "the volume names the claim it came from"
    );
    let o = migrate(&c, &["rollback", "data-mysql-0", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after = claim_facts(&c, "mysql-data");
    for field in [
        "labels",
        "annotations",
        "accessModes",
        "resources",
        "storageClassName",
        "volumeMode",
        "volumeName",
    ] {
        assert_eq!(after[field], before[field], "{field} after the rollback");
    }
    let o = migrate(
        &c,
        &[
            "retain",
            "-l",
            "fateMoudle=mysql",
            "-n",
            NS,
            "-o",
            "json",
            "--dry-run",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "the chart's label finds the claim again: {}",
        text(&o)
    );
}

#[test]
fn dry_run_and_missing_terminal_change_nothing() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    stop_mysql(&c);
    let o = migrate(
        &c,
        &["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--dry-run"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("delete pvc/mysql-data"),
        "the plan is printed: {}",
        text(&o)
    );
    let o = migrate(&c, &["adopt", "mysql-data", "data-mysql-0", "-n", NS]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("not asking without a terminal"),
        "{}",
        text(&o)
    );
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
    assert_eq!(
        c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.status.phase}"),
        "Bound"
    );
    let o = migrate(&c, &["retain", "mysql-data", "-n", NS, "-o", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "retain is not destructive, no prompt needed: {}",
        text(&o)
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan json");
    assert_eq!(plan["steps"][0]["action"], "set-policy");
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Retain"
    );
}

#[test]
fn bad_input_is_refused_in_one_line() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    for (args, expected) in [
        (
            &["adopt", "mysql-data", "Bad;Name", "-n", NS][..],
            "invalid claim name \"Bad;Name\"",
        ),
        (
            &["adopt", "nope", "data-nope-0", "-n", NS][..],
            "persistentvolumeclaims \"nope\" not found in namespace fate-9999",
        ),
        (
            &["retain", "-n", NS][..],
            "name the claims, select them with -l, or pass --all",
        ),
        (
            &["rollback", "never-adopted", "-n", NS][..],
            "nothing is recorded about pvc/never-adopted",
        ),
    ] {
        let o = migrate(&c, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// A StatefulSet whose claim template asks for an access mode the volume lacks cannot take the
/// volume: the adoption is refused before anything changes.
#[test]
fn an_access_mode_the_volume_lacks_refuses_the_adoption() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    stop_mysql(&c);
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("mysql-sts.yaml");
    std::fs::write(
        &manifest,
        MYSQL_STS.replace(
            "accessModes: [ReadWriteOnce]",
            "accessModes: [ReadWriteMany]",
        ),
    )
    .expect("write");
    let o = migrate(
        &c,
        &[
            "adopt",
            "mysql-data",
            "data-mysql-0",
            "-n",
            NS,
            "--for-statefulset",
            "mysql",
            "-f",
            manifest.to_str().expect("utf-8"),
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("access mode ReadWriteMany"),
        "{}",
        text(&o)
    );
    assert_eq!(
        c.jsonpath(&["pv", &volume], "{.spec.persistentVolumeReclaimPolicy}"),
        "Delete"
    );
    assert_eq!(
        c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.status.phase}"),
        "Bound"
    );
    let o = migrate(
        &c,
        &[
            "adopt",
            "mysql-data",
            "mysql-data-0",
            "-n",
            NS,
            "--for-statefulset",
            "mysql",
            "-f",
            manifest.to_str().expect("utf-8"),
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("is not a claim of sts/mysql"),
        "{}",
        text(&o)
    );
}

fn mysql_running(c: &TestCluster) {
    c.wait_for(
        &["pods", "-n", NS, "-l", "fateMoudle=mysql"],
        "{.items[0].status.phase}",
        "Running",
        Duration::from_secs(60),
    );
}

/// Issue 7, item 11: right after `kubectl scale --replicas=0` the old pod is still there (or
/// terminating); adopt waits for it within --timeout and says so.
#[test]
fn adopt_right_after_the_owner_is_scaled_to_zero_waits_for_its_pod() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    mysql_running(&c);
    // A finalizer keeps the pod Terminating after the scale-down (as a slow shutdown does on a
    // real node) until adopt has said that it waits for it; then the pod is let go.
    let pod = c.jsonpath(
        &["pods", "-n", NS, "-l", "fateMoudle=mysql"],
        "{.items[0].metadata.name}",
    );
    assert!(!pod.is_empty(), "no mysql pod");
    let hold = |finalizers: &str| {
        c.kubectl(&[
            "patch",
            "pod",
            &pod,
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            &format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#),
        ])
        .ok();
    };
    hold(r#"["e2e.test/hold"]"#);
    c.kubectl(&["scale", "deploy/mysql", "-n", NS, "--replicas=0"])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .jsonpath(&["pod", &pod, "-n", NS], "{.metadata.deletionTimestamp}")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "pod/{pod} was never deleted:\n{}\n{}",
            c.kubectl(&["get", "pods", "-n", NS, "-o", "yaml"]).stdout,
            c.kubectl(&["get", "deploy,rs", "-n", NS, "-o", "wide"])
                .stdout
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut child = Command::new(binary())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["adopt", "mysql-data", "data-mysql-0", "-n", NS, "--yes"])
        .args(["--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("plugin starts");
    let stdout = child.stdout.take().expect("stdout");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let (lines, said) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("to terminate") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let waited = said.recv_timeout(Duration::from_secs(60)).is_ok();
    hold("null");
    let status = child.wait().expect("plugin ends");
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        waited,
        "adopt never said it waits for pod/{pod}:\n{out}{err}"
    );
    assert_eq!(status.code(), Some(0), "{out}{err}");
    assert_adopted(&c, &volume);
}

/// Issue 7, item 11: `adopt --quiesce` scales the owner down, adopts, and records the replicas
/// so that a rollback brings the owner back on its old claim.
#[test]
fn adopt_quiesce_scales_the_owner_down_and_rollback_scales_it_back() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let volume = mysql_volume(&c);
    mysql_running(&c);
    let o = migrate(
        &c,
        &[
            "adopt",
            "mysql-data",
            "data-mysql-0",
            "-n",
            NS,
            "--quiesce",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("scale deployment/mysql from 1 to 0"),
        "{}",
        text(&o)
    );
    assert_eq!(
        c.jsonpath(&["deploy", "mysql", "-n", NS], "{.spec.replicas}"),
        "0"
    );
    assert_adopted(&c, &volume);
    let o = migrate(&c, &["rollback", "data-mysql-0", "-n", NS, "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        c.jsonpath(&["deploy", "mysql", "-n", NS], "{.spec.replicas}"),
        "1"
    );
    assert_eq!(
        c.jsonpath(&["pvc", "mysql-data", "-n", NS], "{.spec.volumeName}"),
        volume
    );
    mysql_running(&c);
}
