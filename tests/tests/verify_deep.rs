//! `kubectl upgrade-verify record --deep` end to end: each data volume's tree digest is taken
//! through a read-only pod of its own, and `verify` names the volume whose tree changed — here
//! one MinIO object rewritten with bytes of the same length, which the file and byte counts
//! alone cannot tell.

mod verify_support;

use upgrade_e2e::harness::TestCluster;
use verify_support::{differences, record, settled, verify, wait};

const ARTIFACT: &str = "/data/mlpipeline/pipelines/1f4e9a60-0c7b-4b8e-a2f1-7d3c5e9b8a12";

#[test]
fn a_deep_record_names_the_volume_whose_tree_changed_and_passes_while_it_did_not() {
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    let b = record(&c, &["-n", "kubeflow", "--profile", "kubeflow", "--deep"]);
    let minio = b["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["claim"] == "minio-data-minio-0"))
        .expect("minio's claim recorded")
        .clone();
    let summary = &minio["summary"];
    assert_eq!(summary["files"], 7, "{minio:#}");
    assert_eq!(summary["pod"], "verify-minio-data-minio-0", "{minio:#}");
    let digest = summary["digest"].as_str().expect("a digest");
    assert_eq!(digest.len(), 64, "{digest}");
    assert_eq!(b["deepImage"], "debian:bookworm-slim");
    // The read-only pod is gone once the record is taken.
    let pods = c.get_json(&["pods", "-n", "kubeflow"]);
    let names: Vec<&str> = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["minio-0"]);

    let (code, report) = verify(&c, &["-n", "kubeflow"]);
    assert_eq!(code, 0, "nothing changed: {report:#}");
    // `wait` reads the digests once everything else verifies, and passes on them.
    let (code, report) = wait(&c, &["-n", "kubeflow", "--to", "1.6"]);
    assert_eq!(code, 0, "nothing changed: {report:#}");
    assert_eq!(report["unverified"], serde_json::json!([]), "{report:#}");

    // One object's bytes change in place, its length stays.
    c.kubectl(&[
        "exec",
        "-n",
        "kubeflow",
        "minio-0",
        "-c",
        "minio",
        "--",
        "sh",
        "-c",
        r#"n=$(wc -c < "$1"); head -c "$n" /dev/zero | tr '\0' x | dd of="$1" conv=notrunc status=none"#,
        "sh",
        ARTIFACT,
    ])
    .ok();
    let (code, report) = verify(&c, &["-n", "kubeflow"]);
    assert_eq!(code, 1, "{report:#}");
    let volume = minio["volume"].as_str().expect("volume");
    assert_eq!(
        differences(&report),
        [("volume-changed".to_string(), format!("pv/{volume}"))],
        "{report:#}"
    );
    let d = &report["differences"][0];
    assert!(
        d["recorded"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("sha256 {digest} (7 files, "))),
        "{d:#}"
    );
    assert_ne!(d["recorded"], d["now"], "{d:#}");
    assert_eq!(report["verdict"], "differences");
}
