//! `kubectl upgrade-check` end to end in live mode: the built binary, found by real kubectl as
//! the plugin `upgrade-check`, reading the scenarios from the simulated cluster.

use std::process::Command;

use upgrade_e2e::harness::TestCluster;

/// A directory holding the built `kubectl-upgrade-check` under the name kubectl maps
/// `kubectl upgrade-check` to: `kubectl-upgrade_check`.
fn plugin_dir() -> tempfile::TempDir {
    let bin = upgrade_e2e::harness::plugin_binary("check");
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&bin, dir.path().join("kubectl-upgrade_check")).expect("link");
    dir
}

/// Runs `kubectl upgrade-check … -o json` against the cluster; returns (exit code, report).
fn check(cluster: &TestCluster, args: &[&str]) -> (i32, serde_json::Value) {
    let plugins = plugin_dir();
    let path = format!(
        "{}:{}",
        plugins.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .arg("upgrade-check")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(args)
        .args(["-o", "json"])
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), report)
}

fn codes(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["code"].as_str().map(str::to_string))
        .collect()
}

fn commands(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["command"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn fate_storage_class_into_v1_9_0_needs_the_volumes_adopted() {
    let cluster = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let (code, report) = check(
        &cluster,
        &["--profile", "fate", "-n", "fate-9999", "--to", "v1.9.0"],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "needs-steps");
    assert_eq!(
        report["from"], "v1.8.0",
        "read from the running python image"
    );
    assert_eq!(
        report["persistence"], "storage-class",
        "the claims carry Helm's marks"
    );
    assert_eq!(report["instance"], "fate-9999");
    let codes = codes(&report);
    assert!(
        codes.iter().any(|c| c == "deployment-to-statefulset"),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|c| c == "reclaim-policy-delete"),
        "nfs-client provisions Delete volumes: {codes:?}"
    );
    let commands = commands(&report);
    assert!(
        commands.contains(
            &"kubectl upgrade-migrate-pv adopt mysql-data=data-mysql-0 python-data=python-data-python-0 client-data=client-data-client-0 nodemanager-0-data=data-dir-nodemanager-0 nodemanager-1-data=data-dir-nodemanager-1 -n fate-9999".to_string()
        ),
        "one command adopts the five claims: {commands:#?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("kubectl upgrade-migrate-pv retain mysql-data ")),
        "{commands:#?}"
    );
}

#[test]
fn fate_existing_claims_skip_v1_8_0_without_moving_volumes() {
    let cluster = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    let (_, report) = check(
        &cluster,
        &["--profile", "fate", "-n", "fate-9999", "--to", "v1.9.0"],
    );
    assert_eq!(report["from"], "v1.7.2");
    assert_eq!(
        report["persistence"], "existing-claim",
        "claims without Helm's marks are the user's"
    );
    let path = &report["findings"][0];
    assert_eq!(path["code"], "upgrade-path");
    assert_eq!(path["impact"], "safe", "matrix 1: v1.7.2 → v1.9.0 is yes");
    assert!(
        !commands(&report).iter().any(|c| c.contains("adopt")),
        "existing claims are reused"
    );
}

#[test]
fn foundationdb_minor_upgrade_sets_the_version_then_restarts_by_condition() {
    let cluster = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    let ns = cluster.get_json(&["foundationdbclusters", "-A"])["items"][0]["metadata"]["namespace"]
        .as_str()
        .expect("a FoundationDBCluster")
        .to_string();
    let (code, report) = check(
        &cluster,
        &["--profile", "foundationdb", "-n", &ns, "--to", "7.3.1"],
    );
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "needs-steps");
    assert_eq!(report["from"], "7.1.33", "read from the custom resource");
    let commands = commands(&report);
    let at = |n: &str| {
        commands
            .iter()
            .position(|c| c.contains(n))
            .unwrap_or_else(|| panic!("no {n}: {commands:#?}"))
    };
    assert!(at("kubectl patch foundationdbcluster sample") < at("upgrade-restart pods"));
}

#[test]
fn kubeflow_minio_data_is_copied_to_the_new_deployment() {
    let cluster = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    let (code, report) = check(
        &cluster,
        &[
            "--profile",
            "kubeflow",
            "-n",
            "kubeflow",
            "--from",
            "1.6",
            "--to",
            "1.7",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "needs-steps");
    // Without the target manifests the new claim is not known: no copy command with a
    // placeholder, but the command that lists the new claims.
    let without = commands(&report);
    assert!(
        without
            .iter()
            .all(|c| !c.contains('<') && !c.contains("migrate-pv copy")),
        "{without:#?}"
    );
    assert!(
        without
            .contains(&"kubectl get pvc -n kubeflow -l app.kubernetes.io/name=minio".to_string()),
        "{without:#?}"
    );
    // With them, the copy goes into the claim the new StatefulSet's template names.
    let target = upgrade_e2e::harness::scenario("kubeflow-1.7-minio.yaml");
    let target = target.display().to_string();
    let (code, report) = check(
        &cluster,
        &[
            "--profile",
            "kubeflow",
            "-n",
            "kubeflow",
            "--from",
            "1.6",
            "--to",
            "1.7",
            "-f",
            &target,
        ],
    );
    assert_eq!(code, 1);
    let with = commands(&report);
    assert!(
        with.iter().any(|c| c.starts_with(
            "kubectl upgrade-migrate-pv copy minio-data-minio-0 minio-data-2a5fa6a7-minio-0 "
        )),
        "{with:#?}"
    );
}

#[test]
fn rok_v1_to_v2_quiesces_and_orders_components() {
    let cluster = TestCluster::start(&["rok.yaml"]).expect("cluster");
    let (code, report) = check(
        &cluster,
        &[
            "--profile",
            "rok",
            "-n",
            "rok",
            "--from",
            "v1",
            "--to",
            "v2",
        ],
    );
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "needs-steps");
    let commands = commands(&report);
    let at = |n: &str| {
        commands
            .iter()
            .position(|c| c.contains(n))
            .unwrap_or_else(|| panic!("no {n}: {commands:#?}"))
    };
    assert!(
        at("upgrade-restart quiesce") < at("rok-disk-manager")
            && at("rok-disk-manager") < at("rok-kmod")
    );
    assert!(at("rok-kmod") < at("rok-cluster/") && at("rok-cluster/") < at("rok-operator/"));
}

#[test]
fn an_unknown_namespace_is_not_a_safe_verdict() {
    let cluster = TestCluster::start(&[]).expect("cluster");
    let plugins = plugin_dir();
    let path = format!(
        "{}:{}",
        plugins.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .args(["upgrade-check", "--kubeconfig"])
        .arg(&cluster.kubeconfig)
        .args(["--profile", "fate", "-n", "nothing-here", "--to", "v1.9.0"])
        .env("PATH", path)
        .output()
        .expect("kubectl runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no FATE components in namespace nothing-here (looked for fateMoudle=mysql")
    );
}

/// Issue 8, item 1: with Helm's marks removed from mysql-data only, the other claims are still
/// chart-provisioned on Delete volumes and v1.9.0 leaves them behind — never "safe".
#[test]
fn issue8_1_one_users_claim_does_not_make_the_others_safe() {
    let cluster = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    cluster
        .kubectl(&[
            "label",
            "pvc",
            "mysql-data",
            "-n",
            "fate-9999",
            "heritage-",
            "app.kubernetes.io/managed-by-",
        ])
        .ok();
    cluster
        .kubectl(&[
            "annotate",
            "pvc",
            "mysql-data",
            "-n",
            "fate-9999",
            "meta.helm.sh/release-name-",
            "meta.helm.sh/release-namespace-",
        ])
        .ok();
    let (code, report) = check(
        &cluster,
        &["--profile", "fate", "-n", "fate-9999", "--to", "v1.9.0"],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "needs-steps");
    assert_eq!(report["persistence"], "storage-class");
    let modes = &report["persistence_by_component"];
    assert_eq!(modes["mysql"], "existing-claim", "{modes}");
    for c in ["python", "client", "nodemanager-0", "nodemanager-1"] {
        assert_eq!(modes[c], "storage-class", "{c}: {modes}");
    }
    assert!(codes(&report).iter().any(|c| c == "mixed-persistence"));
    let commands = commands(&report);
    for claim in [
        "python-data",
        "client-data",
        "nodemanager-0-data",
        "nodemanager-1-data",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.contains("upgrade-migrate-pv adopt ")
                    && c.contains(&format!(" {claim}="))),
            "{claim}: {commands:#?}"
        );
    }
    assert!(
        !commands
            .iter()
            .any(|c| c.contains("upgrade-migrate-pv adopt ") && c.contains("mysql-data")),
        "{commands:#?}"
    );
}

/// Sets the clients connected to the simulated FoundationDB database and waits until
/// `fdbcli --exec 'status json'` in a process pod reports `count` clients (the fdbcli itself
/// is one).
fn connect_fdb_clients(cluster: &TestCluster, ns: &str, clients: &str, count: u64) {
    cluster
        .kubectl(&[
            "annotate",
            "foundationdbcluster",
            "sample",
            "-n",
            ns,
            "--overwrite",
            &format!("sim.kubectl-upgrade.dev/fdb-clients={clients}"),
        ])
        .ok();
    cluster.wait_for(
        &["pod", "sample-storage-1", "-n", ns],
        "{.status.phase}",
        "Running",
        std::time::Duration::from_secs(60),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let run = cluster.kubectl(&[
            "exec",
            "-n",
            ns,
            "sample-storage-1",
            "-c",
            "foundationdb",
            "--",
            "fdbcli",
            "--exec",
            "status json",
        ]);
        let seen = serde_json::from_str::<serde_json::Value>(&run.stdout)
            .ok()
            .and_then(|s| s["cluster"]["clients"]["count"].as_u64());
        if seen == Some(count) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status json never showed {count} clients: {} {}",
            run.stdout,
            run.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn client_findings(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"].as_str().is_some_and(|c| c.starts_with("client")))
        .cloned()
        .collect()
}

/// Issue 8, item 6: the check reads the connected clients from the database's own status
/// (`fdbcli --exec 'status json'` in a process pod) before a minor upgrade: clients that all
/// support the target give no finding, a client on the old library only blocks the upgrade,
/// and a patch upgrade is not checked.
#[test]
fn issue8_6_foundationdb_clients_are_checked_live_before_a_minor_upgrade() {
    let cluster = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    let ns = "default";
    connect_fdb_clients(
        &cluster,
        ns,
        r#"[{"address":"10.1.0.50:4500","versions":["7.1.33","7.3.43"]},{"address":"10.1.0.52:4500","versions":["7.3.43"]},{"address":"10.1.0.53:4500","versions":["7.1.33"],"logGroup":"fdb-kubernetes-operator"},{"address":"10.1.0.54:4500","versions":["7.4.0"]}]"#,
        5,
    );
    // status json lists the fdbcli that asked, in a process pod on the old 7.1.33 library, as a
    // client: it is not counted (its address is a process's), nor is the operator's own log
    // group, and a 7.4 library supports 7.3.
    let run = cluster.kubectl(&[
        "exec",
        "-n",
        ns,
        "sample-storage-1",
        "-c",
        "foundationdb",
        "--",
        "fdbcli",
        "--exec",
        "status json",
    ]);
    assert!(run.stdout.contains("127.0.0.1:53210"), "{}", run.stdout);
    let args = ["--profile", "foundationdb", "-n", ns, "--to", "7.3.43"];
    let (code, report) = check(&cluster, &args);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (1, Some("needs-steps")),
        "{report:#}"
    );
    assert!(client_findings(&report).is_empty(), "{report:#}");

    connect_fdb_clients(
        &cluster,
        ns,
        r#"[{"address":"10.1.0.50:4500","versions":["7.1.33","7.3.43"]},{"address":"10.1.0.51:4500","versions":["7.1.33"],"logGroup":"billing"}]"#,
        3,
    );
    let (code, report) = check(&cluster, &args);
    assert_eq!(
        (code, report["verdict"].as_str()),
        (1, Some("blocked")),
        "{report:#}"
    );
    let found = client_findings(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["code"], "clients-not-compatible");
    let message = found[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("10.1.0.51:4500 (log group billing) (7.1.33)")
            && !message.contains("10.1.0.50"),
        "{message}"
    );

    // A patch upgrade keeps the protocol: the same old client is not a finding.
    let (_, report) = check(
        &cluster,
        &["--profile", "foundationdb", "-n", ns, "--to", "7.1.40"],
    );
    assert!(client_findings(&report).is_empty(), "{report:#}");
}

/// Issue 8, item 6: without a process pod to run fdbcli in, the check says it could not read
/// the clients' versions instead of passing them.
#[test]
fn issue8_6_no_process_pod_is_a_finding_not_a_pass() {
    let cluster = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    let cr = cluster.get_json(&["foundationdbcluster", "sample", "-n", "default"]);
    cluster.kubectl(&["create", "namespace", "fdb-empty"]).ok();
    cluster.apply(&format!(
        "apiVersion: apps.foundationdb.org/v1beta2\nkind: FoundationDBCluster\nmetadata: {{name: sample, namespace: fdb-empty}}\nspec: {}\nstatus: {}\n",
        cr["spec"], cr["status"]
    ));
    let (code, report) = check(
        &cluster,
        &[
            "--profile",
            "foundationdb",
            "-n",
            "fdb-empty",
            "--to",
            "7.3.43",
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    assert_ne!(report["verdict"], "safe");
    let found = client_findings(&report);
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["code"], "client-versions-unknown");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("could not read client versions: no Running pod"),
        "{report:#}"
    );
}
