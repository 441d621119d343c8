//! `kubectl upgrade-verify record --deep` end to end: each data volume's tree digest is taken
//! through a read-only pod of its own, and `verify` names the volume whose tree changed — here
//! one MinIO object rewritten with bytes of the same length, which the file and byte counts
//! alone cannot tell.

mod verify_support;

use upgrade_e2e::harness::TestCluster;
use verify_support::{differences, record, run, settled, verify, wait};

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

#[test]
fn a_deep_dry_run_lists_the_digest_pods_and_starts_none() {
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    let writes = c.guard.faults().writes();
    let (code, out, err) = run(
        &c,
        &[
            "record",
            "-n",
            "kubeflow",
            "--profile",
            "kubeflow",
            "--deep",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    assert!(
        err.contains(
            "create pod/verify-minio-data-minio-0 (kubeflow, image debian:bookworm-slim) mounting pvc kubeflow/minio-data-minio-0 read-only"
        ),
        "the plan names the digest's pod: {err}"
    );
    let plan = err.find("Plan:").expect("a plan");
    assert!(err[plan..].contains("no digest pod started"), "{err}");
    // Nothing was created, deleted or exec'd into that changes the cluster, and no digest read.
    assert_eq!(
        c.guard.faults().writes() - writes,
        // the summary's exec into the running pod is the only request that is not a read
        1,
        "{err}"
    );
    let b: serde_json::Value = serde_json::from_str(&out).expect("json");
    let minio = &b["volumes"][0]["summary"];
    assert_eq!(minio["digest"], serde_json::Value::Null, "{b:#}");
    assert_eq!(minio["pod"], "minio-0", "{b:#}");
}

#[test]
fn a_deep_record_whose_digest_fails_stores_nothing_and_names_the_claim() {
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    // The digest's pod cannot be created (a quota or admission refusal does the same).
    c.guard.faults().fail_next("pods", Some("create"), 1, 403);
    let (code, out, err) = run(
        &c,
        &[
            "record",
            "-n",
            "kubeflow",
            "--profile",
            "kubeflow",
            "--deep",
            "--yes",
        ],
    );
    assert_eq!(code, 2, "{err}\n{out}");
    assert!(
        err.contains("1 of 1 tree digests could not be taken (pvc kubeflow/minio-data-minio-0): nothing stored"),
        "{err}"
    );
    let cms = c.get_json(&["configmaps", "-n", "kubeflow"]);
    assert!(
        !cms["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|cm| cm["metadata"]["name"] == "kubectl-upgrade-verify"),
        "no baseline stored: {cms:#}"
    );
}

#[test]
fn verify_and_wait_read_digests_with_their_own_image_not_the_baselines() {
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    record(&c, &["-n", "kubeflow", "--profile", "kubeflow", "--deep"]);
    // Whoever can edit the ConfigMap names another image in the baseline.
    let cm = c.get_json(&["configmap", "kubectl-upgrade-verify", "-n", "kubeflow"]);
    let mut b: serde_json::Value =
        serde_json::from_str(cm["data"]["baseline.json"].as_str().expect("baseline"))
            .expect("json");
    b["deepImage"] = "registry.example/reads-everything:1".into();
    let patch = serde_json::json!({"data": {"baseline.json": b.to_string()}});
    c.kubectl(&[
        "patch",
        "configmap",
        "kubectl-upgrade-verify",
        "-n",
        "kubeflow",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])
    .ok();
    for (command, image) in [
        ("verify", None),
        ("wait", None),
        ("verify", Some("busybox:1.36-glibc")),
    ] {
        let mut args = vec![command, "-n", "kubeflow", "-o", "json"];
        if command == "wait" {
            args.extend_from_slice(&["--to", "1.6", "--timeout", "90s"]);
        }
        if let Some(i) = image {
            args.extend_from_slice(&["--image", i]);
        }
        let (code, out, err) = run(&c, &args);
        assert_eq!(code, 0, "{command}: {err}\n{out}");
        let used = image.unwrap_or("debian:bookworm-slim");
        assert!(
            err.contains(&format!(
                "reading tree digests through read-only pods of image {used}\n"
            )),
            "{command} names the image it uses: {err}"
        );
        assert!(!err.contains("reads-everything"), "{err}");
    }
}

#[test]
fn wait_reads_the_digests_once_when_the_rest_verifies_and_that_round_decides() {
    let c = TestCluster::start(&["kubeflow-minio.yaml", "kubeflow-minio-objects.yaml"])
        .expect("cluster");
    settled(&c, "kubeflow");
    record(&c, &["-n", "kubeflow", "--profile", "kubeflow", "--deep"]);
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
        r#"printf x >> "$1""#,
        "sh",
        ARTIFACT,
    ])
    .ok();
    let (code, out, err) = run(
        &c,
        &[
            "wait",
            "-n",
            "kubeflow",
            "--to",
            "1.6",
            "--timeout",
            "60s",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 1, "{err}\n{out}");
    assert_eq!(
        err.matches("reading tree digests through read-only pods")
            .count(),
        1,
        "the volumes are read once: {err}"
    );
    assert!(!err.contains("timed out"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    let codes: Vec<String> = differences(&report).into_iter().map(|(c, _)| c).collect();
    assert_eq!(codes, ["volume-changed"], "{report:#}");
}
