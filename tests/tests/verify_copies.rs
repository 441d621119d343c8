//! `kubectl upgrade-verify` after Charmed Kubeflow's MinIO is redeployed on a new claim and its
//! data copied there by `kubectl upgrade-migrate-pv copy`: the old volume counts as kept while
//! the verified copy stands — before and after `cleanup` removes it — and is named once the
//! claim that held the copy is deleted and the StatefulSet creates it again, empty.

mod verify_support;

use std::time::Duration;

use upgrade_e2e::harness::{TestCluster, scenario, text};
use verify_support::{record, settled, until_difference, verify, wait};

fn plugin_ok(c: &TestCluster, name: &str, args: &[&str]) {
    let o = c.plugin(name, args);
    assert_eq!(o.status.code(), Some(0), "{name} {args:?}: {}", text(&o));
}

fn minio_gone(c: &TestCluster) {
    c.kubectl(&[
        "wait",
        "--for=delete",
        "pod/minio-0",
        "-n",
        "kubeflow",
        "--timeout=90s",
    ]);
    c.wait_for(
        &[
            "pods",
            "-n",
            "kubeflow",
            "-l",
            "app.kubernetes.io/name=minio",
        ],
        "{.items}",
        "[]",
        Duration::from_secs(90),
    );
}

#[test]
fn a_verified_copy_keeps_the_redeployed_minio_volume_until_its_claim_is_created_again() {
    const NEW: &str = "minio-data-2a5fa6a7-minio-0";
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    let b = record(&c, &["-n", "kubeflow", "--profile", "kubeflow"]);
    let old_volume = b["volumes"][0]["volume"]
        .as_str()
        .expect("volume")
        .to_string();
    plugin_ok(
        &c,
        "migrate-pv",
        &["retain", "minio-data-minio-0", "-n", "kubeflow", "--yes"],
    );
    // `juju remove-application minio`, then `juju deploy minio`: a new claim template.
    c.kubectl(&["delete", "sts", "minio", "-n", "kubeflow", "--wait=true"])
        .ok();
    minio_gone(&c);
    let target = std::fs::read_to_string(scenario("kubeflow-1.7-minio.yaml")).expect("target");
    c.apply(&target);
    c.wait_for(
        &["pvc", NEW, "-n", "kubeflow"],
        "{.status.phase}",
        "Bound",
        Duration::from_secs(90),
    );
    c.kubectl(&["scale", "sts/minio", "--replicas=0", "-n", "kubeflow"])
        .ok();
    minio_gone(&c);
    plugin_ok(
        &c,
        "migrate-pv",
        &[
            "copy",
            "minio-data-minio-0",
            NEW,
            "-n",
            "kubeflow",
            "--verify=checksum",
            "--yes",
        ],
    );
    c.kubectl(&["scale", "sts/minio", "--replicas=1", "-n", "kubeflow"])
        .ok();

    let (code, report) = wait(&c, &["-n", "kubeflow", "--to", "1.7"]);
    assert_eq!(code, 0, "kept by the copy, before the cleanup: {report:#}");
    plugin_ok(
        &c,
        "migrate-pv",
        &["cleanup", "minio-data-minio-0", "-n", "kubeflow", "--yes"],
    );
    let (code, report) = verify(&c, &["-n", "kubeflow", "--to", "1.7"]);
    assert_eq!(code, 0, "kept by the copy, after the cleanup: {report:#}");
    let notes = report["notes"].to_string();
    assert!(notes.contains(&format!("pvc kubeflow/{NEW}")), "{report:#}");

    // The claim holding the copy is deleted; the StatefulSet creates it again, empty.
    c.kubectl(&["scale", "sts/minio", "--replicas=0", "-n", "kubeflow"])
        .ok();
    minio_gone(&c);
    c.kubectl(&["delete", "pvc", NEW, "-n", "kubeflow", "--wait=true"])
        .ok();
    c.kubectl(&["scale", "sts/minio", "--replicas=1", "-n", "kubeflow"])
        .ok();
    let (d, _) = until_difference(
        &c,
        &["-n", "kubeflow", "--to", "1.7"],
        "volume-lost",
        &format!("pv/{old_volume}"),
    );
    let message = d["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("migrate-pv's copy into pvc kubeflow/{NEW}"))
            && (message.contains("was deleted and created again")
                || message.contains("no longer exists")),
        "{d:#}"
    );
}
