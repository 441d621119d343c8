//! `kubectl upgrade-verify` names what an upgrade broke, on the simulated cluster: a
//! crash-looping pod, a rollout left half done, a workload gone — with a profile and in a
//! plain namespace without one.

mod verify_support;

use serde_json::Value;
use upgrade_e2e::harness::TestCluster;
use verify_support::{record, run, settled, until_difference, until_difference_where, verify};

#[test]
fn a_crash_looping_pod_is_named() {
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    let (code, report) = verify(&c, &["-n", "fate-9999"]);
    assert_eq!(code, 0, "{report:#}");
    // The new rollsite exits at once, every time.
    c.kubectl(&[
        "patch", "deploy", "rollsite", "-n", "fate-9999", "--type=json", "-p",
        r#"[{"op": "add", "path": "/spec/template/spec/containers/0/command", "value": ["sh", "-c", "exit 3"]}]"#,
    ])
    .ok();
    let (d, _) = until_difference(&c, &["-n", "fate-9999"], "crash-looping", "pod/rollsite-");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("container rollsite is in CrashLoopBackOff after")),
        "{d:#}"
    );
    assert!(
        d["now"]
            .as_str()
            .is_some_and(|n| n.starts_with("CrashLoopBackOff, ")),
        "{d:#}"
    );
}

#[test]
fn a_rollout_left_half_done_is_named_with_its_counts() {
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    // A new version whose pods never become ready: the rolling update keeps the old pod
    // (maxUnavailable 0) and waits for ever.
    c.kubectl(&[
        "patch", "deploy", "clustermanager", "-n", "fate-9999", "--type=json", "-p",
        r#"[{"op": "replace", "path": "/spec/strategy", "value": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "federatedai/eggroll:1.8.0-release"},
            {"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe", "value": {"exec": {"command": ["false"]}, "periodSeconds": 1}}]"#,
    ])
    .ok();
    // Until the controller has observed the new generation, the difference says so; then it
    // names the stuck counts.
    let stuck = |d: &Value| {
        let message = d["message"].as_str().unwrap_or_default();
        [
            "replicas updated",
            "old replicas are pending termination",
            "updated replicas available",
        ]
        .iter()
        .any(|m| message.contains(m))
    };
    let (d, _) = until_difference_where(
        &c,
        &["-n", "fate-9999"],
        "rollout-incomplete",
        "deploy/clustermanager",
        stuck,
    );
    assert!(
        d["now"].as_str().is_some_and(|n| n.contains("updated")),
        "{d:#}"
    );
    // `wait` gives up at its timeout with the same difference, exit 1.
    let (code, out, _) = run(
        &c,
        &[
            "wait",
            "-n",
            "fate-9999",
            "--to",
            "v1.7.2",
            "--timeout",
            "3s",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let report: Value = serde_json::from_str(&out).expect("json");
    assert!(
        report["differences"]
            .as_array()
            .is_some_and(|ds| ds.iter().any(|d| d["code"] == "rollout-incomplete")),
        "{report:#}"
    );
}

#[test]
fn a_plain_namespace_without_a_profile_is_recorded_and_verified() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    settled(&c, "kubeflow");
    record(
        &c,
        &[
            "-n",
            "kubeflow",
            "--output",
            &c.dir.path().join("b.json").display().to_string(),
        ],
    );
    let stored = c.jsonpath(
        &["configmap", "kubectl-upgrade-verify", "-n", "kubeflow"],
        "{.data.baseline\\.json}",
    );
    let baseline: Value = serde_json::from_str(&stored).expect("stored baseline");
    assert!(baseline.get("profile").is_none());
    assert_eq!(baseline["workloads"][0]["name"], "minio");
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(c.dir.path().join("b.json")).expect("file"))
            .expect("file baseline");
    assert_eq!(
        file, baseline,
        "the file and the ConfigMap hold the same baseline"
    );

    let (code, report) = verify(&c, &["-n", "kubeflow"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["checked"]["volumes"], 1);
    // --to without a profile reads app.kubernetes.io/version, which minio carries.
    let (code, report) = verify(&c, &["-n", "kubeflow", "--to", "1.7"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["differences"][0]["code"], "component-version");
    assert_eq!(report["differences"][0]["now"], "1.6");

    c.kubectl(&["delete", "sts", "minio", "-n", "kubeflow", "--wait=true"])
        .ok();
    let (d, _) = until_difference(&c, &["-n", "kubeflow"], "workload-missing", "sts/minio");
    assert_eq!(d["now"], "<none>");
    // Its claim is left, bound, and nothing uses it any more.
    let (d, _) = until_difference(
        &c,
        &["-n", "kubeflow"],
        "volume-unused",
        &format!(
            "pv/{}",
            baseline["volumes"][0]["volume"].as_str().expect("volume")
        ),
    );
    assert!(
        d["now"]
            .as_str()
            .is_some_and(|n| n.contains("minio-data-minio-0")),
        "{d:#}"
    );
}

#[test]
fn a_second_record_asks_before_replacing_the_baseline() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    record(&c, &["-n", "kubeflow"]);
    let first = c.jsonpath(
        &["configmap", "kubectl-upgrade-verify", "-n", "kubeflow"],
        "{.metadata.resourceVersion}",
    );
    // Without a terminal and without --yes: refused, nothing changed, exit 1.
    let (code, _, err) = run(&c, &["record", "-n", "kubeflow"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Pass --yes"), "{err}");
    let (code, _, _) = run(&c, &["record", "-n", "kubeflow", "--dry-run"]);
    assert_eq!(code, 0);
    let after = c.jsonpath(
        &["configmap", "kubectl-upgrade-verify", "-n", "kubeflow"],
        "{.metadata.resourceVersion}",
    );
    assert_eq!(
        first, after,
        "neither the refusal nor --dry-run changed the baseline"
    );
    // No baseline at all: could not verify, exit 2, one line saying how to make one.
    let (code, _, err) = run(&c, &["verify", "-n", "default"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("run `kubectl upgrade-verify record -n default`"),
        "{err}"
    );
}

/// True when MariaDB is installed here (the simulated MySQL pods run it).
fn mariadb() -> bool {
    std::process::Command::new("mariadbd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_dropped_table_and_deleted_rows_are_named_through_real_mariadb() {
    if !mariadb() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    let b = record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    let rows = |table: &str| {
        b["tables"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["table"] == table))
            .unwrap_or_else(|| panic!("{table} recorded: {b:#}"))
            .clone()
    };
    let job = rows("t_job");
    assert!(job["rows"].as_u64().is_some_and(|n| n > 0), "{job:#}");
    assert_eq!(job["database"], "eggroll_meta");
    assert_eq!(rows("server_node")["versionSpecific"], true);
    let (code, report) = verify(&c, &["-n", "fate-9999"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        report["checked"]["tables"].as_u64().is_some_and(|n| n >= 5),
        "{report:#}"
    );

    let sql = |text: &str| {
        c.kubectl(&[
            "exec",
            "-n",
            "fate-9999",
            "deploy/mysql",
            "--",
            "mysql",
            "-uroot",
            "eggroll_meta",
            "-e",
            text,
        ])
        .ok();
    };
    sql("DROP TABLE t_storage_table_meta; DELETE FROM t_job LIMIT 1; DELETE FROM server_node;");
    let (code, report) = verify(&c, &["-n", "fate-9999"]);
    assert_eq!(code, 1, "{report:#}");
    let named: Vec<(String, String, String, String)> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            (s("code"), s("object"), s("recorded"), s("now"))
        })
        .collect();
    let job_rows = job["rows"].as_u64().expect("rows");
    assert_eq!(
        named,
        [
            (
                "rows-lost".to_string(),
                "table eggroll_meta.t_job".to_string(),
                format!("{job_rows} rows"),
                format!("{} rows", job_rows - 1)
            ),
            (
                "table-missing".to_string(),
                "table eggroll_meta.t_storage_table_meta".to_string(),
                format!("{} rows", rows("t_storage_table_meta")["rows"]),
                "missing".to_string()
            ),
        ],
        "server_node is version-specific: emptying it is not a difference"
    );
}

#[test]
fn a_volume_emptied_in_place_is_named_by_its_contents() {
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    settled(&c, "fate-9999");
    let b = record(&c, &["-n", "fate-9999", "--profile", "fate"]);
    let python = b["volumes"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["claim"] == "python-data"))
        .expect("python-data")
        .clone();
    let files = python["summary"]["files"]
        .as_u64()
        .expect("a summary of python-data");
    assert!(files >= 2, "{python:#}");
    assert!(
        python["summary"]["pod"]
            .as_str()
            .is_some_and(|p| p.starts_with("python-"))
    );
    let (code, report) = verify(&c, &["-n", "fate-9999"]);
    assert_eq!(code, 0, "{report:#}");
    // Same claim, same volume, same UID: only the contents tell.
    c.kubectl(&[
        "exec",
        "-n",
        "fate-9999",
        "deploy/python",
        "--",
        "sh",
        "-c",
        "rm -rf /data/projects/fate/jobs/* /data/projects/fate/jobs/.[!.]*",
    ])
    .ok();
    let (d, _) = until_difference(
        &c,
        &["-n", "fate-9999"],
        "volume-emptied",
        "pv/fate-9999-python-data",
    );
    assert_eq!(
        d["recorded"],
        format!("{files} files, {} bytes", python["summary"]["bytes"])
    );
    assert_eq!(d["now"], "0 files, 0 bytes");
}
