//! `upgrade_shared::exec` and `upgrade_shared::mysql` end to end against the simulated cluster's
//! real MariaDB: logins read from a Secret and from KubeFATE's env, queries as rows, the
//! password absent from every process's argv while a client runs, exit codes, cut streams,
//! timeouts and stdin streamed in and out in constant memory; and the backup plugin's
//! checksums read in a consistent snapshot.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::AsyncWrite;
use upgrade_e2e::harness::TestCluster;
use upgrade_shared::exec::{self, Command, ExecError, Input};
use upgrade_shared::mysql::{self, Session, Source, TargetRef};

/// A password with every character an option file or a shell could trip over (no `'` or `\`:
/// the image's init SQL takes the env value as a plain string literal).
const PASSWORD: &str = "p\"w #x $(id);=[client] `u`";

const DB: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: db-auth, namespace: shop}
stringData: {root: "@SECRET@"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: exporter
        image: prom/mysqld-exporter:v0.14.0
      - name: mariadb
        image: mariadb:10.11
        env:
        - name: MARIADB_ROOT_PASSWORD
          valueFrom: {secretKeyRef: {name: db-auth, key: root}}
"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn client(c: &TestCluster) -> kube::Client {
    let kc = Kubeconfig::read_from(&c.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn mariadb_installed() -> bool {
    std::path::Path::new("/usr/sbin/mariadbd").exists()
}

/// Opens a session once the server answers (it initialises its data directory first).
async fn session(client: &kube::Client, ns: &str, source: &Source) -> Session {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let attempt = async {
            let db = mysql::locate(client, ns, source, None).await?;
            let s = Session::open(client, db).await?;
            s.query("SELECT 1;").await?;
            Ok::<_, mysql::MysqlError>(s)
        };
        match attempt.await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("the database never answered: {e}"),
        }
    }
}

/// Every process's argv on this machine (the simulated pods' processes are local).
fn all_cmdlines() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            out.push(String::from_utf8_lossy(&raw).replace('\0', " "));
        }
    }
    out
}

#[test]
fn a_secret_held_root_password_logs_in_and_never_reaches_argv() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = TestCluster::start(&[]).expect("cluster");
    c.kubectl(&["create", "namespace", "shop"]).ok();
    c.apply(&DB.replace("@SECRET@", &PASSWORD.replace('"', "\\\"")));
    let rt = rt();
    rt.block_on(async {
        let client = client(&c).await;
        let source = Source::Target(TargetRef::parse("deploy/db").unwrap());
        let s = session(&client, "shop", &source).await;
        // The MariaDB container, not the exporter beside it, and root from the Secret.
        assert_eq!(s.db.container, "mariadb");
        assert_eq!(s.user(), "root");
        assert!(s.login_origin().contains("secret/db-auth key root"));
        assert!(
            !format!("{s:?}").contains("$(id)"),
            "Debug shows no password"
        );

        let server = s.server().await.expect("server info");
        assert!(server.mariadb, "{server:?}");
        assert_eq!(server.gtid_mode, None);

        s.query(
            "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, note TEXT);
             INSERT INTO shop.items VALUES (1, 'tab\there'), (2, 'line\nbreak'), (3, NULL);",
        )
        .await
        .expect("create");
        let rows = s
            .query("SELECT id, note FROM shop.items ORDER BY id;")
            .await
            .expect("select");
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("tab\there".into())],
                vec![Some("2".into()), Some("line\nbreak".into())],
                vec![Some("3".into()), None],
            ]
        );

        // While a client runs, no process on the machine carries the password in its argv.
        let running = tokio::spawn(async move {
            let r = s.query("SELECT SLEEP(3);").await;
            (s, r)
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen_client = false;
        while Instant::now() < deadline && !seen_client {
            let lines = all_cmdlines();
            for l in &lines {
                assert!(!l.contains("$(id)"), "password in argv: {l}");
            }
            seen_client = lines
                .iter()
                .any(|l| l.contains("mariadb --defaults-extra-file="));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen_client, "the client was never seen running");
        let (s, r) = running.await.expect("join");
        r.expect("sleep query");

        // A wrong password is the server's own one-line refusal.
        let mut wrong = s.db.clone();
        wrong.container = "mariadb".into();
        let bad = Session::new(
            s.pods.clone(),
            wrong,
            s.tools.clone(),
            mysql::Login {
                user: "root".into(),
                password: mysql::Password::new("not-it"),
                origin: "a test".into(),
            },
        );
        let e = bad.query("SELECT 1;").await.unwrap_err().to_string();
        assert!(e.contains("Access denied for user 'root'"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    });
}

#[test]
fn kubefate_mysql_is_found_from_the_profile_with_its_empty_root_password() {
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let rt = rt();
    rt.block_on(async {
        let client = client(&c).await;
        let profile = upgrade_shared::profile::builtin("fate").unwrap();
        let source = Source::from_profile(&profile).unwrap();
        let s = session(&client, "fate-9999", &source).await;
        assert!(s.db.pod.starts_with("mysql-"), "{:?}", s.db);
        assert_eq!(
            s.db.database.as_ref().unwrap().databases,
            vec!["eggroll_meta".to_string()]
        );
        assert_eq!(s.user(), "root");
        assert_eq!(s.login_origin(), "user \"root\", an empty root password");
        let tables = s
            .query("SHOW TABLES FROM eggroll_meta;")
            .await
            .expect("tables");
        assert!(
            tables
                .iter()
                .any(|r| r[0].as_deref() == Some("server_node")),
            "{tables:?}"
        );
    });
}

#[test]
fn snapshot_checksums_read_the_snapshot_announced_even_after_a_later_commit() {
    use std::io::{BufRead, Write};
    if !mariadb_installed() {
        eprintln!("skipped: MariaDB is not installed");
        return;
    }
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let rt = rt();
    rt.block_on(async {
        let client = client(&c).await;
        let profile = upgrade_shared::profile::builtin("fate").unwrap();
        let source = Source::from_profile(&profile).unwrap();
        let s = session(&client, "fate-9999", &source).await;
        s.query(
            "CREATE DATABASE snap; CREATE TABLE snap.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;
             INSERT INTO snap.t VALUES (1, 1), (2, 2), (3, 3);",
        )
        .await
        .expect("create");
        let tables = vec![("snap".to_string(), "t".to_string())];
        let plain = |rows: Vec<Vec<Option<String>>>| rows[0][1].clone().unwrap();
        let unchanged = plain(s.query("CHECKSUM TABLE snap.t;").await.expect("checksum"));

        // Another session holds the table locked, so the snapshot's CHECKSUM TABLE can only
        // read it after that session's insert committed and the lock was released.
        let mut other = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args([
                "exec",
                "-i",
                "-n",
                "fate-9999",
                &s.db.pod,
                "-c",
                &s.db.container,
                "--",
            ])
            .args([
                s.tools.client.as_str(),
                "-uroot",
                "--unbuffered",
                "--batch",
                "--skip-column-names",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl exec");
        let mut to_other = other.stdin.take().unwrap();
        let mut from_other = std::io::BufReader::new(other.stdout.take().unwrap());
        let mut said = |sql: &str, want: &str| {
            writeln!(to_other, "{sql}").unwrap();
            to_other.flush().unwrap();
            let mut line = String::new();
            from_other.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), want, "after {sql}");
        };
        said("LOCK TABLES snap.t WRITE; SELECT 'locked';", "locked");

        let (taken, announced) = tokio::sync::oneshot::channel();
        let sums = tokio::spawn(async move {
            let r = kubectl_upgrade_backup::commands::snapshot_checksums(&s, &tables, Some(taken))
                .await;
            (s, r)
        });
        tokio::time::timeout(Duration::from_secs(60), announced)
            .await
            .expect("the snapshot is announced while the table is still locked")
            .expect("announced");
        said(
            "INSERT INTO snap.t VALUES (4, 4); UNLOCK TABLES; SELECT 'committed';",
            "committed",
        );
        let (s, got) = tokio::time::timeout(Duration::from_secs(60), sums)
            .await
            .expect("the checksums end")
            .expect("join");
        let got = got.expect("snapshot checksums");
        let key = ("snap".to_string(), "t".to_string());
        assert_eq!(
            got[&key].map(|v| v.to_string()),
            Some(unchanged.clone()),
            "the checksum is the snapshot's, not the table's after the insert"
        );
        let now = plain(s.query("CHECKSUM TABLE snap.t;").await.expect("checksum"));
        assert_ne!(now, unchanged, "the insert changed the live table");
        drop(to_other);
        let _ = other.wait();
    });
}

/// Counts bytes written and keeps nothing.
#[derive(Default)]
struct Counter(u64);

impl AsyncWrite for Counter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0 += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

const PLAIN_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: box, namespace: default}
spec:
  containers:
  - {name: main, image: debian:bookworm-slim}
"#;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[test]
fn exec_streams_reports_exit_codes_cuts_and_timeouts() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(PLAIN_POD);
    c.wait_for(
        &["pod", "box"],
        "{.status.phase}",
        "Running",
        Duration::from_secs(30),
    );
    let rt = rt();
    rt.block_on(async {
        let client = client(&c).await;
        let pods: Api<Pod> = Api::namespaced(client, "default");

        // 64 MiB of stdin through `cat` and back, never held in memory.
        let input = tokio::io::repeat(b'x');
        use tokio::io::AsyncReadExt;
        let input = Input::reader(input.take(64 * 1024 * 1024));
        let mut count = Counter::default();
        let mut lines = Vec::new();
        let cmd = Command::new("box", None, sh("cat; echo done >&2"));
        let f = exec::run(&pods, &cmd, input, &mut count, &mut |l| {
            lines.push(l.to_string())
        })
        .await
        .expect("cat");
        assert!(f.success(), "{f:?}");
        assert_eq!(count.0, 64 * 1024 * 1024);
        assert_eq!(lines, vec!["done".to_string()]);
        assert_eq!(f.last_stderr, "done");

        // The command's own exit code, and its last stderr line in the one-line failure.
        let cmd = Command::new("box", None, sh("echo first >&2; echo why >&2; exit 3"));
        let f = exec::run(
            &pods,
            &cmd,
            Input::None,
            &mut Counter::default(),
            &mut |_| {},
        )
        .await
        .expect("ran");
        assert_eq!(f.code, 3);
        let e = f.check("box", "the step").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the step failed in pod/box: exit code 3: why"
        );

        // Small outputs captured.
        let cmd = Command::new("box", None, sh("printf 'a\\tb\\n'"));
        let out = exec::capture(&pods, &cmd, Input::None, "printing")
            .await
            .expect("capture");
        assert_eq!(out, b"a\tb\n");

        // A time limit ends the command as a failure.
        let cmd =
            Command::new("box", None, sh("sleep 30")).timeout(Some(Duration::from_millis(500)));
        let started = Instant::now();
        let e = exec::run(
            &pods,
            &cmd,
            Input::None,
            &mut Counter::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ExecError::Timeout { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));

        // A missing container is refused at the start, in one line.
        let cmd = Command::new("box", Some("nope"), sh("true"));
        let e = exec::run(
            &pods,
            &cmd,
            Input::None,
            &mut Counter::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ExecError::Start { .. }), "{e}");
        assert!(e.to_string().starts_with("cannot exec in pod/box: "), "{e}");
    });
}

#[test]
fn a_cut_exec_stream_is_a_failure_not_an_empty_success() {
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(PLAIN_POD);
    c.wait_for(
        &["pod", "box"],
        "{.status.phase}",
        "Running",
        Duration::from_secs(30),
    );
    let rt = rt();
    rt.block_on(async {
        let client = client(&c).await;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let cmd = Command::new(
            "box",
            None,
            sh("echo started >&2; while :; do head -c 65536 /dev/zero; sleep 0.05; done"),
        );
        let mut count = Counter::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut tx = Some(tx);
        let mut on_line = |l: &str| {
            if l == "started"
                && let Some(t) = tx.take()
            {
                let _ = t.send(());
            }
        };
        let run = exec::run(&pods, &cmd, Input::None, &mut count, &mut on_line);
        let cut = async {
            rx.await.expect("started");
            c.guard.faults().cut_exec_streams();
        };
        let (result, ()) =
            tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(run, cut) })
                .await
                .expect("the cut is noticed");
        let e = result.unwrap_err();
        assert!(matches!(e, ExecError::Cut { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "the exec stream from pod/box was cut before the command ended"
        );
    });
}
