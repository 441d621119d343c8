//! Runs the FATE schema migration chain (`sql/fate/1.7.2-1.8.0.sql` then
//! `sql/fate/1.8.0-1.9.0.sql`) against a throwaway MariaDB server loaded with a v1.7.2
//! database (`sql/fate/fixtures/eggroll_meta-1.7.2.sql`), and checks that the new columns
//! appear, that no existing row changes, that each script can run twice, and that a script
//! run against the wrong database stops with an error.
//!
//! Needs the MariaDB server and client binaries (Debian/Ubuntu:
//! `apt-get install -y mariadb-server mariadb-client`). Without them the test fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const DATABASE: &str = "eggroll_meta";
const STEP_1: &str = "1.7.2-1.8.0.sql";
const STEP_2: &str = "1.8.0-1.9.0.sql";

/// Every table of the fixture.
const TABLES: &[&str] = &[
    "server_node",
    "store_locator",
    "session_main",
    "t_job",
    "t_task",
    "t_machine_learning_model_info",
    "t_storage_table_meta",
    "t_component_summary_20220601",
];

/// Tables no script may touch (their full definition must stay the same).
const UNTOUCHED: &[&str] = &[
    "server_node",
    "store_locator",
    "session_main",
    "t_job",
    "t_component_summary_20220601",
];

/// Rows the fixture inserts, per table.
const FIXTURE_ROWS: &[(&str, usize)] = &[
    ("server_node", 3),
    ("store_locator", 2),
    ("session_main", 2),
    ("t_job", 3),
    ("t_task", 3),
    ("t_machine_learning_model_info", 2),
    ("t_storage_table_meta", 2),
    ("t_component_summary_20220601", 2),
];

/// Columns each step adds: (step, table, column, expected `COLUMN_TYPE`, expected
/// `IS_NULLABLE`, value the fixture's existing rows must end up with).
const ADDED: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        STEP_1,
        "t_storage_table_meta",
        "f_origin",
        "varchar(50)",
        "NO",
        "",
    ),
    (
        STEP_1,
        "t_storage_table_meta",
        "f_disable",
        "tinyint(1)",
        "NO",
        "0",
    ),
    (
        STEP_2,
        "t_machine_learning_model_info",
        "f_archive_sha256",
        "varchar(100)",
        "YES",
        "NULL",
    ),
    (
        STEP_2,
        "t_machine_learning_model_info",
        "f_archive_from_ip",
        "varchar(100)",
        "YES",
        "NULL",
    ),
    (STEP_2, "t_task", "f_run_port", "int(11)", "YES", "NULL"),
    (STEP_2, "t_task", "f_kill_status", "tinyint(1)", "YES", "1"),
    (STEP_2, "t_task", "f_error_report", "text", "YES", "NULL"),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fate_sql(file: &str) -> PathBuf {
    repo_root().join("sql/fate").join(file)
}

/// Finds the first of `names` on `PATH` or in the usual sbin directories (mariadbd lives in
/// /usr/sbin, which is not on every user's PATH).
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/sbin",
    ] {
        dirs.push(PathBuf::from(extra));
    }
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

struct Binaries {
    server: PathBuf,
    install_db: PathBuf,
    client: PathBuf,
}

fn missing(what: &str) -> ! {
    panic!(
        "{what} not found: this test needs a real MariaDB server and client. Install them \
         with `apt-get update && apt-get install -y mariadb-server mariadb-client` \
         (Debian/Ubuntu) and run the test again."
    )
}

fn binaries() -> Binaries {
    Binaries {
        server: find_binary(&["mariadbd", "mysqld"]).unwrap_or_else(|| missing("mariadbd/mysqld")),
        install_db: find_binary(&["mariadb-install-db", "mysql_install_db"])
            .unwrap_or_else(|| missing("mariadb-install-db/mysql_install_db")),
        client: find_binary(&["mariadb", "mysql"])
            .unwrap_or_else(|| missing("mariadb/mysql client")),
    }
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A MariaDB server on a unix socket in a temporary directory; killed when dropped.
struct Server {
    child: Child,
    client: PathBuf,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(bins: &Binaries) -> Result<Server> {
        let mut dir = tempfile::tempdir().context("creating a temporary directory")?;
        // Unix socket paths are limited to ~108 bytes.
        if dir.path().join("mysqld.sock").as_os_str().len() > 100 {
            dir = tempfile::tempdir_in("/tmp").context("creating a temporary directory in /tmp")?;
        }
        let datadir = dir.path().join("data");
        let socket = dir.path().join("mysqld.sock");
        let root = running_as_root();

        let mut install = Command::new(&bins.install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db");
        if root {
            install.arg("--user=root");
        }
        let out = install.output().context("running mariadb-install-db")?;
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}{}",
                bins.install_db.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let mut server = Command::new(&bins.server);
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!(
                "--pid-file={}",
                dir.path().join("mysqld.pid").display()
            ))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg("--skip-networking")
            .arg("--innodb-buffer-pool-size=32M")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if root {
            server.arg("--user=root");
        }
        let child = server
            .spawn()
            .with_context(|| format!("starting {}", bins.server.display()))?;
        let mut srv = Server {
            child,
            client: bins.client.clone(),
            socket,
            dir,
        };
        srv.wait_ready()?;
        Ok(srv)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the MariaDB server exited early ({status}):\n{}",
                    self.error_log()
                );
            }
            if self.socket.exists() && self.client(None, "SELECT 1").status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the MariaDB server did not accept connections within 20 s:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Runs the command-line client in batch mode (stops at the first error, as the upgrade
    /// does) with `input` on stdin.
    fn client(&self, database: Option<&str>, input: &str) -> Output {
        let mut cmd = Command::new(&self.client);
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["--user=root", "--batch", "--skip-column-names", "--raw"]);
        if let Some(db) = database {
            cmd.arg(db);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the MariaDB client");
        child
            .stdin
            .take()
            .expect("client stdin")
            .write_all(input.as_bytes())
            .expect("writing to the MariaDB client");
        child
            .wait_with_output()
            .expect("waiting for the MariaDB client")
    }

    /// Runs `input` and returns stdout, failing on a non-zero exit.
    fn sql(&self, database: Option<&str>, input: &str) -> Result<String> {
        let out = self.client(database, input);
        if !out.status.success() {
            bail!(
                "client failed ({}) on:\n{input}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    fn run_file(&self, database: Option<&str>, path: &Path) -> Output {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        self.client(database, &text)
    }

    fn apply(&self, file: &str) -> Result<()> {
        let out = self.run_file(Some(DATABASE), &fate_sql(file));
        if !out.status.success() {
            bail!(
                "{file} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the database looks like: each table's definition, and its rows restricted to the
/// columns the fixture created (so added columns do not count as changes to old rows).
#[derive(Debug, PartialEq, Eq, Clone)]
struct Snapshot {
    tables: Vec<String>,
    definitions: BTreeMap<String, String>,
    rows: BTreeMap<String, Vec<String>>,
}

fn columns(srv: &Server, table: &str) -> Result<Vec<String>> {
    let out = srv.sql(
        None,
        &format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{DATABASE}' \
             AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
        ),
    )?;
    Ok(out.lines().map(str::to_owned).collect())
}

fn snapshot(srv: &Server, fixture_columns: &BTreeMap<String, Vec<String>>) -> Result<Snapshot> {
    let tables: Vec<String> = srv
        .sql(Some(DATABASE), "SHOW TABLES")?
        .lines()
        .map(str::to_owned)
        .collect();
    let mut definitions = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for table in &tables {
        let def = srv.sql(Some(DATABASE), &format!("SHOW CREATE TABLE `{table}`"))?;
        definitions.insert(table.clone(), def);
        if let Some(cols) = fixture_columns.get(table) {
            let list = cols
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let order = (1..=cols.len())
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let out = srv.sql(
                Some(DATABASE),
                &format!("SELECT {list} FROM `{table}` ORDER BY {order}"),
            )?;
            rows.insert(table.clone(), out.lines().map(str::to_owned).collect());
        }
    }
    Ok(Snapshot {
        tables,
        definitions,
        rows,
    })
}

fn column_info(srv: &Server, table: &str, column: &str) -> Result<Option<(String, String)>> {
    let out = srv.sql(
        None,
        &format!(
            "SELECT COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE \
             TABLE_SCHEMA = '{DATABASE}' AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'"
        ),
    )?;
    Ok(out.lines().next().and_then(|l| {
        let (ty, nullable) = l.split_once('\t')?;
        Some((ty.to_owned(), nullable.to_owned()))
    }))
}

/// Checks the columns of `step` are present (or absent) with the expected type.
fn check_added(srv: &Server, step: &str, present: bool) -> Result<()> {
    for (s, table, column, ty, nullable, _) in ADDED.iter().filter(|a| a.0 == step) {
        let info = column_info(srv, table, column)?;
        if present {
            let (got_ty, got_null) =
                info.with_context(|| format!("{s}: {table}.{column} is missing"))?;
            assert_eq!(
                (got_ty.as_str(), got_null.as_str()),
                (*ty, *nullable),
                "{s}: type/nullability of {table}.{column}"
            );
        } else {
            assert!(info.is_none(), "{table}.{column} exists before {s} ran");
        }
    }
    Ok(())
}

/// The values the existing rows got in the added columns.
fn check_backfill(srv: &Server, step: &str) -> Result<()> {
    for (_, table, column, _, _, expected) in ADDED.iter().filter(|a| a.0 == step) {
        let out = srv.sql(
            Some(DATABASE),
            &format!("SELECT IFNULL(CAST(`{column}` AS CHAR), 'NULL') FROM `{table}`"),
        )?;
        let values: Vec<&str> = out.lines().collect();
        assert!(!values.is_empty(), "{table} has no rows");
        assert!(
            values.iter().all(|v| v == expected),
            "existing rows of {table}.{column} should hold {expected:?}, got {values:?}"
        );
    }
    Ok(())
}

fn assert_same_data(before: &Snapshot, after: &Snapshot, what: &str) {
    for table in TABLES {
        assert_eq!(
            before.rows.get(*table),
            after.rows.get(*table),
            "{what}: the rows of {table} changed"
        );
    }
    for table in UNTOUCHED {
        assert_eq!(
            before.definitions.get(*table),
            after.definitions.get(*table),
            "{what}: the definition of {table} changed"
        );
    }
    assert_eq!(
        before.tables, after.tables,
        "{what}: the set of tables changed"
    );
}

#[test]
fn fate_chain_1_7_2_to_1_9_0_keeps_data_and_reruns_cleanly() -> Result<()> {
    let started = Instant::now();
    let bins = binaries();
    for file in [STEP_1, STEP_2, "fixtures/eggroll_meta-1.7.2.sql"] {
        assert!(fate_sql(file).is_file(), "sql/fate/{file} is missing");
    }
    let srv = Server::start(&bins)?;

    // The v1.7.2 database.
    let out = srv.run_file(None, &fate_sql("fixtures/eggroll_meta-1.7.2.sql"));
    assert!(
        out.status.success(),
        "loading the 1.7.2 fixture failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fixture_columns = BTreeMap::new();
    for table in TABLES {
        let cols = columns(&srv, table)?;
        assert!(!cols.is_empty(), "the fixture has no table {table}");
        fixture_columns.insert((*table).to_owned(), cols);
    }
    let fixture = snapshot(&srv, &fixture_columns)?;
    assert_eq!(
        fixture.tables.len(),
        TABLES.len(),
        "unexpected tables: {:?}",
        fixture.tables
    );
    for (table, count) in FIXTURE_ROWS {
        assert_eq!(
            fixture.rows[*table].len(),
            *count,
            "rows of {table} in the fixture"
        );
    }
    check_added(&srv, STEP_1, false)?;
    check_added(&srv, STEP_2, false)?;

    // A script pointed at a database without FATE's tables stops with an error and creates
    // nothing.
    srv.sql(None, "CREATE DATABASE not_fate")?;
    for step in [STEP_1, STEP_2] {
        let out = srv.run_file(Some("not_fate"), &fate_sql(step));
        assert!(
            !out.status.success(),
            "{step} succeeded on a database without FATE's tables"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ERROR"),
            "{step} failed without an error message: {stderr}"
        );
        assert_eq!(
            srv.sql(Some("not_fate"), "SHOW TABLES")?,
            "",
            "{step} created tables"
        );
    }

    // 1.7.2 -> 1.8.0, twice.
    srv.apply(STEP_1)?;
    check_added(&srv, STEP_1, true)?;
    check_added(&srv, STEP_2, false)?;
    check_backfill(&srv, STEP_1)?;
    let after_1 = snapshot(&srv, &fixture_columns)?;
    assert_same_data(&fixture, &after_1, STEP_1);
    srv.apply(STEP_1)
        .context("running 1.7.2-1.8.0.sql a second time")?;
    assert_eq!(
        after_1,
        snapshot(&srv, &fixture_columns)?,
        "a second run of {STEP_1} changed something"
    );

    // 1.8.0 -> 1.9.0, twice.
    srv.apply(STEP_2)?;
    check_added(&srv, STEP_1, true)?;
    check_added(&srv, STEP_2, true)?;
    check_backfill(&srv, STEP_1)?;
    check_backfill(&srv, STEP_2)?;
    let after_2 = snapshot(&srv, &fixture_columns)?;
    assert_same_data(&fixture, &after_2, STEP_2);
    srv.apply(STEP_2)
        .context("running 1.8.0-1.9.0.sql a second time")?;
    assert_eq!(
        after_2,
        snapshot(&srv, &fixture_columns)?,
        "a second run of {STEP_2} changed something"
    );

    // Re-running the whole chain on an already migrated database is harmless too.
    srv.apply(STEP_1)?;
    srv.apply(STEP_2)?;
    assert_eq!(
        after_2,
        snapshot(&srv, &fixture_columns)?,
        "re-running the chain changed something"
    );

    // A row written the 1.9.0 way fits the new schema.
    srv.sql(
        Some(DATABASE),
        "UPDATE t_task SET f_run_port = 9360, f_kill_status = 0, f_error_report = 'boom' \
         WHERE f_task_id = '202206021000000000002_upload_0'",
    )?;
    srv.sql(
        Some(DATABASE),
        "UPDATE t_storage_table_meta SET f_origin = 'upload', f_disable = TRUE WHERE f_name = 'b1c3e5f7'",
    )?;

    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the chain test took {:?}",
        started.elapsed()
    );
    Ok(())
}
