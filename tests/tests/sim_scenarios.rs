//! The shipped scenarios load, and what they seed is what the plugins will look for.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, scenario};

const WAIT: Duration = Duration::from_secs(60);

fn mariadb_installed() -> bool {
    let ok = std::path::Path::new("/usr/sbin/mariadbd").exists();
    if !ok {
        eprintln!(
            "skipped: MariaDB is not installed (apt-get install -y mariadb-server mariadb-client)"
        );
    }
    ok
}

fn exec_until(c: &TestCluster, args: &[&str], want: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = c.kubectl(args);
        if r.code == 0 && r.stdout.contains(want) {
            return r.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never printed {want:?}: {} {}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fate_1_8_0_components_are_found_by_their_helm_labels() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let deploys = c.get_json(&[
        "deploy",
        "-n",
        "fate-9999",
        "-l",
        "chart=fate,release=fate-9999,owner=kubefate,partyId=9999",
    ]);
    let mut names: Vec<&str> = deploys["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["metadata"]["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "client",
            "clustermanager",
            "mysql",
            "nodemanager-0",
            "nodemanager-1",
            "python",
            "rollsite"
        ]
    );
    let mysql = c.get_json(&["deploy", "mysql", "-n", "fate-9999"]);
    assert_eq!(
        mysql["spec"]["template"]["spec"]["containers"][0]["image"],
        "mysql:8.0.28"
    );
    assert_eq!(
        mysql["metadata"]["annotations"]["meta.helm.sh/release-name"],
        "fate-9999"
    );
    let claim = c.get_json(&["pvc", "mysql-data", "-n", "fate-9999"]);
    assert_eq!(claim["status"]["phase"], "Bound");
    assert_eq!(claim["metadata"]["labels"]["heritage"], "Helm");
    let pv = c.get_json(&["pv", claim["spec"]["volumeName"].as_str().expect("volume")]);
    assert_eq!(pv["spec"]["storageClassName"], "nfs-client");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(
        pv["metadata"]["name"],
        format!("pvc-{}", claim["metadata"]["uid"].as_str().expect("uid"))
    );
    c.kubectl(&[
        "rollout",
        "status",
        "deploy/python",
        "-n",
        "fate-9999",
        "--timeout=60s",
    ])
    .ok();
    let version = c
        .kubectl(&[
            "exec",
            "-n",
            "fate-9999",
            "deploy/python",
            "--",
            "cat",
            "/data/projects/fate/jobs/VERSION",
        ])
        .ok();
    assert_eq!(version, "FATE=1.8.0\n");
}

#[test]
fn fate_1_8_0_mysql_runs_mariadb_on_its_volume() {
    if !mariadb_installed() {
        return;
    }
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    c.kubectl(&[
        "rollout",
        "status",
        "deploy/mysql",
        "-n",
        "fate-9999",
        "--timeout=60s",
    ])
    .ok();
    let out = exec_until(
        &c,
        &[
            "exec",
            "-n",
            "fate-9999",
            "deploy/mysql",
            "--",
            "mysql",
            "-uroot",
            "-N",
            "-e",
            "SELECT COUNT(*) FROM eggroll_meta.server_node",
        ],
        "3",
    );
    assert_eq!(out.trim(), "3");
    let as_user = c
        .kubectl(&[
            "exec",
            "-n",
            "fate-9999",
            "deploy/mysql",
            "--",
            "mysql",
            "-ufate",
            "-pfate_dev",
            "-N",
            "-e",
            "SELECT 1",
        ])
        .ok();
    assert_eq!(as_user.trim(), "1");
}

#[test]
fn fate_1_7_2_claims_are_user_made_on_retained_volumes() {
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    let claim = c.get_json(&["pvc", "python-data", "-n", "fate-9999"]);
    assert_eq!(claim["status"]["phase"], "Bound");
    assert!(
        claim["metadata"]["labels"].is_null()
            && claim["metadata"]["annotations"]["meta.helm.sh/release-name"].is_null()
    );
    let pv = c.get_json(&["pv", "fate-9999-python-data"]);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
    let image = c
        .kubectl(&[
            "get",
            "deploy",
            "python",
            "-n",
            "fate-9999",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .ok();
    assert_eq!(image, "federatedai/python:1.7.2-release");
}

#[test]
fn fate_1_7_2_mysql_holds_the_fixture_database() {
    if !mariadb_installed() {
        return;
    }
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    c.kubectl(&[
        "rollout",
        "status",
        "deploy/mysql",
        "-n",
        "fate-9999",
        "--timeout=60s",
    ])
    .ok();
    exec_until(
        &c,
        &[
            "exec",
            "-n",
            "fate-9999",
            "deploy/mysql",
            "--",
            "mysql",
            "-uroot",
            "-N",
            "-e",
            "SHOW TABLES FROM eggroll_meta",
        ],
        "server_node",
    );
}

#[test]
fn fdb_cluster_reports_its_version_and_process_groups() {
    let c = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    let fdb = c.get_json(&["foundationdbclusters.apps.foundationdb.org", "sample"]);
    assert_eq!(fdb["apiVersion"], "apps.foundationdb.org/v1beta2");
    assert_eq!(fdb["spec"]["version"], "7.1.33");
    assert_eq!(fdb["status"]["runningVersion"], "7.1.33");
    assert_eq!(
        fdb["status"]["processGroups"].as_array().map(Vec::len),
        Some(5)
    );
    c.wait_for(
        &["pod", "sample-storage-1"],
        "{.status.phase}",
        "Running",
        WAIT,
    );
    let table = c.kubectl(&["get", "fdb", "sample"]).ok();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "NAME",
            "GENERATION",
            "RECONCILED",
            "AVAILABLE",
            "FULLREPLICATION",
            "VERSION",
            "AGE"
        ]
    );
    assert_eq!(
        lines[1][..6],
        ["sample", "1", "1", "true", "true", "7.1.33"]
    );
}

#[test]
fn kubeflow_minio_claim_comes_from_the_volume_claim_template() {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.kubectl(&[
        "rollout",
        "status",
        "sts/minio",
        "-n",
        "kubeflow",
        "--timeout=60s",
    ])
    .ok();
    c.wait_for(
        &["pvc", "minio-data-minio-0", "-n", "kubeflow"],
        "{.status.phase}",
        "Bound",
        WAIT,
    );
    let pod = c.get_json(&[
        "pods",
        "-n",
        "kubeflow",
        "-l",
        "app.kubernetes.io/name=minio",
    ]);
    assert_eq!(
        pod["items"][0]["spec"]["containers"][0]["image"],
        "minio/minio:RELEASE.2021-09-03T03-56-13Z"
    );
    let key = c
        .kubectl(&[
            "exec",
            "-n",
            "kubeflow",
            "minio-0",
            "--",
            "sh",
            "-c",
            "echo $MINIO_ACCESS_KEY",
        ])
        .ok();
    assert_eq!(key, "minio\n");
}

#[test]
fn rok_operator_and_cluster_version() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    let version = c
        .kubectl(&[
            "get",
            "rokclusters.crd.arrikto.com",
            "rok",
            "-n",
            "rok",
            "-o",
            "jsonpath={.status.version}",
        ])
        .ok();
    assert_eq!(version, "v1.5.3");
    for (ns, name) in [
        ("rok-system", "rok-operator"),
        ("rok", "rok-csi-controller"),
        ("rok", "rok-tools"),
    ] {
        c.kubectl(&[
            "rollout",
            "status",
            &format!("sts/{name}"),
            "-n",
            ns,
            "--timeout=60s",
        ])
        .ok();
    }
}

#[test]
fn sim_cluster_binary_serves_until_terminated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim-cluster"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--scenario")
        .arg(scenario("rok.yaml"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("sim-cluster starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "ready\n");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "ns", "rok", "-o", "name"])
        .output()
        .expect("kubectl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "namespace/rok\n");
    let config = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
    assert!(
        config.contains("current-context: sim") && config.contains("server: http://127.0.0.1:")
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn fdb_stand_in_operator_reconciles_a_version_change() {
    let c = TestCluster::start(&["fdb-cluster.yaml"]).expect("cluster");
    c.kubectl(&[
        "patch",
        "foundationdbcluster",
        "sample",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"version":"7.3.43"}}"#,
    ])
    .ok();
    c.wait_for(
        &["fdb", "sample"],
        "{.status.runningVersion}",
        "7.3.43",
        WAIT,
    );
    c.wait_for(
        &["fdb", "sample"],
        "{.status.generations.reconciled}",
        "2",
        WAIT,
    );
    c.wait_for(
        &["pod", "sample-log-1"],
        "{.spec.containers[0].image}",
        "foundationdb/foundationdb:7.3.43",
        WAIT,
    );
}

/// A MariaDB container killed while it initialises its data directory (a restart under load)
/// must come back initialised, with the root password from its environment, never with the
/// half-written grant tables the killed run left on the volume.
#[test]
fn a_mariadb_container_killed_during_its_initialisation_starts_it_over() {
    if !mariadb_installed() {
        return;
    }
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: db\n");
    let pod = r#"apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: db
spec:
  containers:
  - name: mariadb
    image: mariadb:10.11
    env:
    - name: MARIADB_ROOT_PASSWORD
      value: init-pw
  volumes:
  - name: data
    emptyDir: {}
"#;
    let pod = pod.replace(
        "      value: init-pw\n",
        "      value: init-pw\n    volumeMounts:\n    - name: data\n      mountPath: /var/lib/mysql\n",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    // The initialisation takes a second or two: catch it, or start a fresh pod and try again.
    let killed = loop {
        assert!(
            Instant::now() < deadline,
            "never caught the initialisation running"
        );
        c.apply(&pod);
        let mut caught = false;
        let round = Instant::now() + Duration::from_secs(30);
        while Instant::now() < round {
            let r = c.kubectl(&[
                "exec",
                "-n",
                "db",
                "db",
                "--",
                "pkill",
                "-KILL",
                "-f",
                "mariadb-install-db|--bootstrap",
            ]);
            if r.code == 0 {
                caught = true;
                break;
            }
            let ready = c.kubectl(&[
                "exec",
                "-n",
                "db",
                "db",
                "--",
                "test",
                "-S",
                "/run/mysqld/mysqld.sock",
            ]);
            if ready.code == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if caught {
            break true;
        }
        c.kubectl(&["delete", "pod", "-n", "db", "db", "--wait=true"])
            .ok();
    };
    assert!(killed);
    // The container restarts (restartPolicy Always) and the password works.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = c.kubectl(&[
            "exec",
            "-n",
            "db",
            "db",
            "--",
            "sh",
            "-c",
            r#"MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot -N -e "SELECT COUNT(*) FROM mysql.user WHERE user = 'root'""#,
        ]);
        if r.code == 0 {
            assert!(
                r.stdout.trim().parse::<u32>().unwrap_or(0) >= 1,
                "{}",
                r.stdout
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted server never let root in: {}\n{}",
            r.stderr,
            c.pod_report("db", "db")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let restarts =
        c.get_json(&["pod", "-n", "db", "db"])["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .unwrap_or(0);
    assert!(restarts >= 1, "the container was restarted after the kill");
}

/// Loading copies objects as written: only a volume's `spec.claimRef` loses its server-set
/// fields, and nothing is added to objects that have no claimRef (or no spec at all), as
/// `kubectl apply` of the same files would not add it.
#[test]
fn loading_adds_no_claim_ref_to_other_objects() {
    let c = TestCluster::start(&["rok.yaml"]).expect("cluster");
    let cr = c.get_json(&["rokcluster", "rok", "-n", "rok"]);
    assert!(cr["spec"].get("claimRef").is_none(), "{}", cr["spec"]);
    let class = c.get_json(&["storageclass", "standard"]);
    assert!(class.get("spec").is_none(), "{class}");
    let ns = c.get_json(&["namespace", "rok-system"]);
    assert!(ns["spec"].get("claimRef").is_none(), "{}", ns["spec"]);
}
