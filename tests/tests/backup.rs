//! `kubectl upgrade-backup` end to end against the simulated cluster's real MariaDB: the
//! KubeFATE flow (dump, verify, restore test, refused and quiesced restores, list), the seed's
//! data-only dump, passwords kept out of argv, files and output, and the faults that must end
//! in a one-line failure and never in a success: a cut exec stream, the dump process killed in
//! the pod, the copy of its stream to the exec's stdout killed there, a full volume, a wrong
//! password, a missing database, a server that is down.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, plugin_binary, text};

const NS: &str = "fate-9999";

fn mariadb_installed() -> bool {
    Path::new("/usr/sbin/mariadbd").exists()
}

fn backup(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("backup", args)
}

/// The error lines of a failed run: exactly one, naming the cause.
fn one_error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "one error line:\n{}", text(o));
    assert!(!err.contains("panicked"), "{err}");
    lines[0].to_string()
}

/// Waits until the server answers.
fn ready(c: &TestCluster, ns: &str, target: &str, password: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match run_sql(c, ns, target, password, "SELECT 1") {
            Ok(_) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the server never answered: {e}\n{}",
                c.pod_report(ns, target)
            ),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs SQL once in the database container (the server answers: see [`ready`]).
fn sql(c: &TestCluster, ns: &str, target: &str, password: Option<&str>, query: &str) -> String {
    run_sql(c, ns, target, password, query).unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn run_sql(
    c: &TestCluster,
    ns: &str,
    target: &str,
    password: Option<&str>,
    query: &str,
) -> Result<String, String> {
    // The password comes from the container's own env through MYSQL_PWD, never argv: other
    // tests scan every process's argv for it.
    let script = if password.is_some() {
        r#"MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot -N -B -e "$1""#
    } else {
        r#"exec mariadb -uroot -N -B -e "$1""#
    };
    let args = [
        "exec", "-n", ns, target, "--", "sh", "-c", script, "sh", query,
    ];
    let r = c.kubectl(&args);
    if r.code == 0 {
        Ok(r.stdout)
    } else {
        Err(r.stderr)
    }
}

fn manifest(file: &Path) -> serde_json::Value {
    let mut name = file.as_os_str().to_os_string();
    name.push(".manifest.json");
    serde_json::from_str(&std::fs::read_to_string(name).expect("manifest")).expect("json")
}

fn rows_in(m: &serde_json::Value, table: &str) -> u64 {
    m["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == table)
        .unwrap_or_else(|| panic!("no table {table} in {m}"))["rows"]
        .as_u64()
        .unwrap()
}

/// Rows written by the running KubeFATE v1.8.0 MySQL: text with quotes, parentheses,
/// semicolons and newlines, a BLOB table with NULLs, a trigger and a procedure.
const FATE_DATA: &str = r#"
INSERT INTO server_node (name, host, port, node_type, status) VALUES
  ('quote''s (and); semicolons', 'h', 1, 'T', 'HEALTHY'), ('line
break', 'h2', 2, 'T', 'LOST');
CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB);
INSERT INTO blobs SELECT seq, RANDOM_BYTES(1000) FROM seq_1_to_300;
INSERT INTO blobs VALUES (1000, NULL), (1001, '');
CREATE TRIGGER blobs_ins BEFORE INSERT ON blobs FOR EACH ROW SET NEW.id = NEW.id;
CREATE PROCEDURE blobs_count() SELECT COUNT(*) FROM blobs;
"#;

fn fate_cluster() -> TestCluster {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    ready(&c, NS, "deploy/mysql", None);
    // The server answers while its entrypoint still loads the chart's database, as the
    // official images' init does: wait for the database itself.
    let deadline = Instant::now() + Duration::from_secs(90);
    while let Err(e) = run_sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        "SELECT COUNT(*) FROM eggroll_meta.server_node",
    ) {
        assert!(Instant::now() < deadline, "eggroll_meta never loaded: {e}");
        std::thread::sleep(Duration::from_millis(300));
    }
    sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        &format!("USE eggroll_meta; {FATE_DATA}"),
    );
    c
}

#[test]
fn kubefate_dump_verify_restore_test_refused_and_quiesced_restore() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = fate_cluster();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fate-9999-v1.8.0.sql");
    let f = file.to_str().unwrap();
    let server_nodes: u64 = sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        "SELECT COUNT(*) FROM eggroll_meta.server_node",
    )
    .trim()
    .parse()
    .unwrap();

    // Dump: plan, then the verified file and its manifest.
    let o = backup(&c, &["dump", "-n", NS, "--profile", "fate", "--output", f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Dump plan\n"), "{out}");
    assert!(out.contains("verified: exit status 0"), "{out}");
    let m = manifest(&file);
    assert_eq!(m["verified"], true);
    assert_eq!(m["mode"], "full");
    assert_eq!(m["databases"][0]["name"], "eggroll_meta");
    assert_eq!(rows_in(&m, "blobs"), 302);
    assert_eq!(rows_in(&m, "server_node"), server_nodes);
    assert_eq!(m["checks"]["exit_status"], 0);
    assert_eq!(m["checks"]["trailer"], true);
    assert_eq!(m["checks"]["pod_sha256"], true);
    assert_eq!(m["tool"]["dump"], "mariadb-dump");
    assert!(m["pod"].as_str().unwrap().starts_with("mysql-"));
    assert!(m["databases"][0]["tables"][0]["checksum"].is_u64(), "{m}");
    let flags: Vec<&str> = m["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in [
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
        "--hex-blob",
    ] {
        assert!(flags.contains(&want), "{flags:?}");
    }
    let (bytes, sha) =
        upgrade_shared::backup_manifest::sha256_of(std::fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(m["bytes"], bytes);
    assert_eq!(m["sha256"], sha.as_str());
    assert!(!Path::new(&format!("{f}.partial")).exists());

    // Verify, then prove it restores: scratch database, rows and CHECKSUM TABLE, dropped after.
    let o = backup(&c, &["verify", f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = backup(
        &c,
        &["verify", f, "--restore-test", "-n", NS, "--profile", "fate"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("checksums equal to the manifest"),
        "{}",
        text(&o)
    );
    let dbs = sql(&c, NS, "deploy/mysql", None, "SHOW DATABASES");
    assert!(
        !dbs.contains("kubectl_upgrade_verify"),
        "scratch dropped: {dbs}"
    );

    // A changed file fails verification and is refused by restore, exit 1.
    let bad = dir.path().join("tampered.sql");
    std::fs::copy(&file, &bad).unwrap();
    std::fs::copy(
        dir.path().join("fate-9999-v1.8.0.sql.manifest.json"),
        dir.path().join("tampered.sql.manifest.json"),
    )
    .unwrap();
    let mut body = std::fs::read(&bad).unwrap();
    let at = body.len() / 2;
    body[at] ^= 1;
    std::fs::write(&bad, body).unwrap();
    let o = backup(&c, &["verify", bad.to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let o = backup(
        &c,
        &[
            "restore",
            bad.to_str().unwrap(),
            "-n",
            NS,
            "--profile",
            "fate",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        one_error_line(&o).contains("fails verification"),
        "{}",
        text(&o)
    );

    // The data changes; a restore without --replace is refused and changes nothing.
    sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        "DELETE FROM eggroll_meta.blobs WHERE id < 100",
    );
    let o = backup(&c, &["restore", f, "-n", NS, "--profile", "fate", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        one_error_line(&o).contains("pass --replace"),
        "{}",
        text(&o)
    );
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT COUNT(*) FROM eggroll_meta.blobs"
        )
        .trim(),
        "203"
    );
    // Without a terminal and without --yes nothing is asked and nothing changes.
    let o = backup(
        &c,
        &["restore", f, "-n", NS, "--profile", "fate", "--replace"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(one_error_line(&o).contains("Pass --yes"), "{}", text(&o));
    // --dry-run prints the plan only.
    let o = backup(
        &c,
        &[
            "restore",
            f,
            "-n",
            NS,
            "--profile",
            "fate",
            "--replace",
            "--quiesce",
            "--dry-run",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(plan.contains("DROP database eggroll_meta"), "{plan}");
    assert!(plan.contains("deployment/python to 0 replicas"), "{plan}");
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT COUNT(*) FROM eggroll_meta.blobs"
        )
        .trim(),
        "203"
    );

    // Replace with the writers stopped: everything back, the writers too.
    let o = backup(
        &c,
        &[
            "restore",
            f,
            "-n",
            NS,
            "--profile",
            "fate",
            "--replace",
            "--quiesce",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("302") || text(&o).contains("rows, equal to the manifest"),
        "{}",
        text(&o)
    );
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT COUNT(*) FROM eggroll_meta.blobs"
        )
        .trim(),
        "302"
    );
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT host FROM eggroll_meta.server_node WHERE port = 2"
        )
        .trim(),
        "h2"
    );
    assert!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SHOW TRIGGERS FROM eggroll_meta"
        )
        .contains("blobs_ins")
    );
    assert!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SHOW PROCEDURE STATUS WHERE Db = 'eggroll_meta'"
        )
        .contains("blobs_count")
    );
    for d in ["python", "client", "rollsite"] {
        assert_eq!(
            c.jsonpath(&["deploy", d, "-n", NS], "{.spec.replicas}"),
            "1",
            "{d} is back"
        );
    }
    let journal = c.jsonpath(
        &["configmap", "kubectl-upgrade-backup", "-n", NS],
        "{.data}",
    );
    assert!(
        !journal.contains("restore."),
        "journal entry removed once the writers are back: {journal}"
    );

    // list: both files, one verified and one changed, as JSON too.
    let o = backup(&c, &["list", dir.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let l: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let state = |n: &str| {
        l.as_array()
            .unwrap()
            .iter()
            .find(|e| e["file"] == n)
            .unwrap()["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state("fate-9999-v1.8.0.sql"), "verified");
    assert_eq!(state("tampered.sql"), "changed");
}

#[test]
fn seed_data_only_dump_compressed_and_on_the_volume() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = fate_cluster();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.sql.gz");
    let f = file.to_str().unwrap();
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            NS,
            "--profile",
            "fate",
            "--data-only",
            "--compress",
            "gzip",
            "--output",
            f,
            "--to-volume",
            "/var/lib/mysql/data.sql",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = manifest(&file);
    assert_eq!(m["mode"], "data-only");
    assert_eq!(m["compression"], "gzip");
    let ignored: Vec<&str> = m["ignored_tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(ignored.contains(&"eggroll_meta.server_node"), "{ignored:?}");
    let names: Vec<&str> = m["databases"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blobs"], "version-specific tables are left out");
    // The SQL has rows and no schema.
    let mut sqltext = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_string(&mut sqltext)
        .unwrap();
    assert!(!sqltext.contains("CREATE TABLE"));
    assert!(!sqltext.contains("INSERT INTO `server_node`"));
    assert!(sqltext.contains("INSERT INTO `blobs`"));
    // The copy on the volume, with its own manifest, as the seed keeps it.
    let on_volume = c
        .kubectl(&[
            "exec",
            "-n",
            NS,
            "deploy/mysql",
            "--",
            "sha256sum",
            "/var/lib/mysql/data.sql",
        ])
        .ok();
    assert!(
        on_volume.starts_with(m["sql_sha256"].as_str().unwrap()),
        "{on_volume}"
    );
    let vm = c
        .kubectl(&[
            "exec",
            "-n",
            NS,
            "deploy/mysql",
            "--",
            "cat",
            "/var/lib/mysql/data.sql.manifest.json",
        ])
        .ok();
    assert!(vm.contains("\"verified\": true"), "{vm}");
    // A path off the volumes is refused before anything runs.
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to-volume",
            "/tmp/x.sql",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        one_error_line(&o).contains("not on a volume"),
        "{}",
        text(&o)
    );

    // Into a fresh schema: tables with rows are refused, then replaced with --replace.
    let o = backup(&c, &["restore", f, "-n", NS, "--profile", "fate", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        one_error_line(&o).contains("already hold rows"),
        "{}",
        text(&o)
    );
    sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        "DELETE FROM eggroll_meta.blobs WHERE id > 10",
    );
    let o = backup(
        &c,
        &[
            "restore",
            f,
            "-n",
            NS,
            "--profile",
            "fate",
            "--replace",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT COUNT(*) FROM eggroll_meta.blobs"
        )
        .trim(),
        "302"
    );
    let o = backup(
        &c,
        &["verify", f, "--restore-test", "-n", NS, "--profile", "fate"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A MariaDB whose root password is in a Secret, with every character a shell or an option
/// file could trip over.
const PASSWORD: &str = "s3cr\"t #x $(id);=[client] `w`";

fn shop_yaml(db_command: Option<&str>, backup_claim: bool) -> String {
    let command = db_command
        .map(|c| format!("        command: [\"sh\", \"-c\", \"{c}\"]\n"))
        .unwrap_or_default();
    let (backup_volume, backup_mount) = if backup_claim {
        (
            "      - {name: backup, persistentVolumeClaim: {claimName: backup-space}}\n",
            "        - {name: backup, mountPath: /backup}\n",
        )
    } else {
        ("", "")
    };
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Secret
metadata: {{name: db-auth, namespace: shop}}
stringData: {{root: "{}"}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: db-data, namespace: shop}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: db, namespace: shop}}
spec:
  replicas: 1
  strategy: {{type: Recreate}}
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      volumes:
      - {{name: data, persistentVolumeClaim: {{claimName: db-data}}}}
{backup_volume}      containers:
      - name: mariadb
        image: mariadb:10.11
{command}        env:
        - name: MARIADB_ROOT_PASSWORD
          valueFrom: {{secretKeyRef: {{name: db-auth, key: root}}}}
        volumeMounts:
        - {{name: data, mountPath: /var/lib/mysql}}
{backup_mount}"#,
        PASSWORD.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

const STORAGE: &str = r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: Immediate
"#;

fn shop_cluster(rows: u32, db: &str) -> TestCluster {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(STORAGE);
    c.apply(&shop_yaml(None, false));
    fill(&c, rows, db);
    c
}

fn fill(c: &TestCluster, rows: u32, db: &str) {
    ready(c, "shop", "deploy/db", Some(PASSWORD));
    sql(
        c,
        "shop",
        "deploy/db",
        Some(PASSWORD),
        &format!(
            "CREATE DATABASE {db}; USE {db}; CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB);
             INSERT INTO big SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_{rows};"
        ),
    );
}

/// Every process's argv on this machine (the simulated pods' processes are local).
fn all_cmdlines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .collect()
}

fn spawn_backup(c: &TestCluster, args: &[&str]) -> Child {
    Command::new(plugin_binary("backup"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin runs")
}

fn wait_for_file(path: &Path, min: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if std::fs::metadata(path).is_ok_and(|m| m.len() >= min) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the dump ended ({status}) before {} grew", path.display());
        }
        assert!(Instant::now() < deadline, "{} never grew", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn passwords_stay_out_of_argv_files_manifests_and_output() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(20000, "argv_check");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.sql");
    let mut child = spawn_backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "argv_check",
            "--output",
            file.to_str().unwrap(),
            "--to-volume",
            "/var/lib/mysql/shop.sql",
        ],
    );
    // While the dump runs, no process on the machine has the password in its argv.
    let mut option_files = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        for l in all_cmdlines() {
            assert!(!l.contains("$(id)"), "password in argv: {l}");
            if l.starts_with("mariadb-dump --defaults-extra-file=") && l.contains("argv_check") {
                let path = l["mariadb-dump --defaults-extra-file=".len()..]
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string();
                // The option "file" is a FIFO only its owner can open, never a file on disk.
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    assert!(meta.file_type().is_fifo(), "{path} is a FIFO");
                    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path}");
                }
                option_files.insert(path);
            }
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen_dump = !option_files.is_empty();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(seen_dump, "the dump was never seen running");
    assert!(!text(&o).contains("$(id)"));
    let m = std::fs::read_to_string(dir.path().join("shop.sql.manifest.json")).unwrap();
    assert!(!m.contains("$(id)") && !m.contains("s3cr"), "{m}");
    assert_eq!(manifest(&file)["databases"][0]["tables"][0]["rows"], 20000);
    // The private directory of the option FIFO is gone; the files on the volume hold no
    // password.
    for path in &option_files {
        let dir = Path::new(path).parent().unwrap();
        let r = c.kubectl(&[
            "exec",
            "-n",
            "shop",
            "deploy/db",
            "--",
            "test",
            "-e",
            dir.to_str().unwrap(),
        ]);
        assert_ne!(r.code, 0, "{} was left behind", dir.display());
    }
    let left = c
        .kubectl(&[
            "exec",
            "-n",
            "shop",
            "deploy/db",
            "--",
            "sh",
            "-c",
            "grep -l 's3cr' /var/lib/mysql/shop.sql*; true",
        ])
        .ok();
    assert!(left.trim().is_empty(), "password in {left}");
}

#[test]
fn a_cut_exec_stream_fails_the_dump_and_keeps_only_the_partial() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(40000, "cut_me");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.sql");
    let mut child = spawn_backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "cut_me",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    wait_for_file(&dir.path().join("cut.sql.partial"), 1 << 20, &mut child);
    c.guard.faults().cut_exec_streams();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("was cut"), "{line}");
    assert!(line.contains("kept as"), "{line}");
    assert!(!file.exists(), "no final file");
    assert!(
        !dir.path().join("cut.sql.manifest.json").exists(),
        "no manifest"
    );
    assert!(dir.path().join("cut.sql.partial").exists());
}

#[test]
fn the_dump_process_killed_in_the_pod_fails_with_its_own_status() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(40000, "kill_me");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.sql");
    let mut child = spawn_backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "kill_me",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    wait_for_file(&dir.path().join("killed.sql.partial"), 1 << 20, &mut child);
    let mut killed = false;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if line.starts_with("mariadb-dump --defaults-extra-file=") && line.contains(" kill_me") {
            let pid = e.file_name().to_string_lossy().into_owned();
            killed |= Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success();
        }
    }
    assert!(killed, "the dump process was found and killed");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("mariadb-dump exited with 137"), "{line}");
    assert!(!file.exists());
    assert!(!dir.path().join("killed.sql.manifest.json").exists());
}

/// The parent's pid of a process, from `/proc/PID/stat` (the field after the command's
/// parenthesised name).
fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1).map(str::to_string)
}

fn cmdline_of(pid: &str) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

#[test]
fn the_copy_to_the_exec_s_stdout_killed_in_the_pod_fails_the_dump_and_names_dd() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(40000, "kill_dd");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dd.sql");
    let mut child = spawn_backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "kill_dd",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    wait_for_file(&dir.path().join("dd.sql.partial"), 1 << 20, &mut child);
    // The dd that copies this dump's stream: its parent is the script run for kill_dd.
    let mut killed = false;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !cmdline_of(&pid).starts_with("dd bs=1M iflag=fullblock") {
            continue;
        }
        let Some(parent) = parent_of(&pid) else {
            continue;
        };
        let script = cmdline_of(&parent);
        if script.starts_with("sh -c ") && script.contains(" kill_dd ") {
            killed |= Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .unwrap()
                .success();
        }
    }
    assert!(killed, "the dump's dd was found and killed");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("dd exited with 137"), "{line}");
    assert!(line.contains("kept as"), "{line}");
    assert!(!file.exists());
    assert!(!dir.path().join("dd.sql.manifest.json").exists());
}

#[test]
fn wrong_password_missing_database_and_a_server_that_is_down() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(10, "small");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.sql");
    let o_ = out.to_str().unwrap();
    // A database that is not there: named, with what there is, before anything is dumped.
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "nope",
            "--output",
            o_,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        one_error_line(&o)
            .contains("database nope does not exist on the server (it has: mysql, small)"),
        "{}",
        text(&o)
    );
    // Bad input never reaches the cluster.
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "a;drop",
            "--output",
            o_,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        one_error_line(&o).contains("invalid database name"),
        "{}",
        text(&o)
    );
    // The Secret no longer holds the server's password.
    c.kubectl(&[
        "patch",
        "secret",
        "db-auth",
        "-n",
        "shop",
        "-p",
        r#"{"stringData":{"root":"wrong"}}"#,
    ])
    .ok();
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "small",
            "--output",
            o_,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("Access denied for user 'root'"), "{line}");
    assert!(!line.contains("wrong"), "the password is not shown: {line}");
    assert!(!out.exists());
    // A container whose server is not running.
    c.kubectl(&["delete", "deploy", "db", "-n", "shop", "--wait=true"])
        .ok();
    c.apply(&shop_yaml(Some("sleep 100000"), false));
    c.wait_for(
        &["deploy", "db", "-n", "shop"],
        "{.status.readyReplicas}",
        "1",
        Duration::from_secs(60),
    );
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "small",
            "--output",
            o_,
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("Can't connect"), "{line}");
    assert!(!out.exists());
}

/// A small tmpfs the test mounts and unmounts, for a volume that fills up.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_volume_fails_the_dump_on_it() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(STORAGE);
    c.kubectl(&["create", "namespace", "shop"]).ok();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap()
        .success();
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _guard = Tmpfs(small.clone());
    c.apply(&format!(
        r#"
apiVersion: v1
kind: PersistentVolume
metadata: {{name: small-backup}}
spec:
  capacity: {{storage: 1Mi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {{path: {}}}
  claimRef: {{namespace: shop, name: backup-space}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: backup-space, namespace: shop}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: small-backup
  resources: {{requests: {{storage: 1Mi}}}}
"#,
        small.display()
    ));
    c.apply(&shop_yaml(None, true));
    fill(&c, 4000, "fills");
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "fills",
            "--to-volume",
            "/backup/fills.sql",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let line = one_error_line(&o);
    assert!(line.contains("the dump failed"), "{line}");
    assert!(line.contains("kept as /backup/fills.sql.partial"), "{line}");
    let listing = c
        .kubectl(&["exec", "-n", "shop", "deploy/db", "--", "ls", "/backup"])
        .ok();
    assert!(!listing.lines().any(|l| l == "fills.sql"), "{listing}");
    assert!(!listing.contains("manifest"), "{listing}");
}

#[test]
fn a_killed_quiesced_restore_is_finished_by_its_rerun_and_the_writers_come_back() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = fate_cluster();
    sql(
        &c,
        NS,
        "deploy/mysql",
        None,
        "USE eggroll_meta; INSERT INTO blobs SELECT seq, RANDOM_BYTES(1024) FROM seq_2000_to_6000;",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fate.sql");
    let f = file.to_str().unwrap();
    let o = backup(&c, &["dump", "-n", NS, "--profile", "fate", "--output", f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let args = [
        "restore",
        f,
        "-n",
        NS,
        "--profile",
        "fate",
        "--replace",
        "--quiesce",
        "--yes",
    ];
    let mut child = spawn_backup(&c, &args);
    // Killed once the writers are stopped and recorded.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let journal = c.jsonpath(
            &["configmap", "kubectl-upgrade-backup", "-n", NS],
            "{.data}",
        );
        let python = c.jsonpath(&["deploy", "python", "-n", NS], "{.spec.replicas}");
        if journal.contains("restore.") && python == "0" {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before it was killed"
        );
        assert!(Instant::now() < deadline, "the writers were never stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        c.jsonpath(&["deploy", "python", "-n", NS], "{.spec.replicas}"),
        "0"
    );
    // The re-run restores and gives the writers the replicas the journal recorded.
    let o = backup(&c, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for d in [
        "python",
        "client",
        "clustermanager",
        "rollsite",
        "nodemanager-0",
    ] {
        assert_eq!(
            c.jsonpath(&["deploy", d, "-n", NS], "{.spec.replicas}"),
            "1",
            "{d}"
        );
    }
    assert_eq!(
        sql(
            &c,
            NS,
            "deploy/mysql",
            None,
            "SELECT COUNT(*) FROM eggroll_meta.blobs"
        )
        .trim(),
        "4303"
    );
    let journal = c.jsonpath(
        &["configmap", "kubectl-upgrade-backup", "-n", NS],
        "{.data}",
    );
    assert!(!journal.contains("restore."), "{journal}");
}

/// A control plane that answers 503 now and then (an API server restarting behind its load
/// balancer) costs a retry, not the backup: finding the database workload, its pods and its
/// credentials goes through the suite's retry budget.
#[test]
fn transient_server_errors_while_finding_the_database_are_retried() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = shop_cluster(10, "small");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.sql");
    let faults = c.guard.faults();
    faults.fail_next("deployments", Some("get"), 2, 503);
    faults.fail_next("pods", Some("list"), 2, 503);
    faults.fail_next("secrets", Some("get"), 2, 503);
    let o = backup(
        &c,
        &[
            "dump",
            "-n",
            "shop",
            "--target",
            "deploy/db",
            "--database",
            "small",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(manifest(&out)["databases"][0]["tables"][0]["rows"], 10);
}
