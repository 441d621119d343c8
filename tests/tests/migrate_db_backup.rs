//! `kubectl upgrade-migrate-db apply --backup` with a real `kubectl upgrade-backup dump` of the
//! KubeFATE fixture database: a write after the dump makes the backup stale and the apply is
//! refused; with a fresh one the history names it; and rollback is `upgrade-backup restore` of
//! that dump, which brings back the v1.7.2 schema, the rows, and no migration history.

use std::path::Path;
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, text};

const NS: &str = "fate-9999";

fn sql_try(c: &TestCluster, query: &str) -> Option<String> {
    let r = c.kubectl_stdin(
        &[
            "exec",
            "-i",
            "-n",
            NS,
            "deploy/mysql",
            "--",
            "mysql",
            "-uroot",
            "--batch",
            "--skip-column-names",
            "eggroll_meta",
        ],
        Some(&format!("{query};\n")),
    );
    (r.code == 0).then_some(r.stdout)
}

fn sql(c: &TestCluster, query: &str) -> String {
    sql_try(c, query).unwrap_or_else(|| panic!("query failed: {query}"))
}

fn has_column(c: &TestCluster, table: &str, column: &str) -> bool {
    sql(
        c,
        &format!(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'eggroll_meta' \
             AND TABLE_NAME = '{table}' AND COLUMN_NAME = '{column}'"
        ),
    )
    .trim()
        == "1"
}

fn rows(c: &TestCluster) -> String {
    [
        "SELECT f_job_id, f_role, f_party_id, f_status FROM t_job ORDER BY 1, 2, 3",
        "SELECT f_task_id, f_role, f_status FROM t_task ORDER BY 1, 2",
        "SELECT f_name, f_namespace FROM t_storage_table_meta ORDER BY 1, 2",
    ]
    .iter()
    .map(|q| sql(c, q))
    .collect::<Vec<_>>()
    .join("--\n")
}

#[test]
fn apply_relies_on_a_fresh_verified_backup_and_restore_rolls_back() {
    assert!(
        Path::new("/usr/sbin/mariadbd").exists(),
        "MariaDB is not installed: apt-get install -y mariadb-server mariadb-client"
    );
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    while sql_try(&c, "SELECT 1").is_none() {
        assert!(Instant::now() < deadline, "MariaDB did not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = rows(&c);
    let dump = c.dir.path().join("fate-9999-1.7.2.sql");
    let dump_s = dump.to_str().unwrap();
    let manifest = format!("{dump_s}.manifest.json");
    let o = c.plugin(
        "backup",
        &[
            "dump",
            "-n",
            NS,
            "--profile",
            "fate",
            "--output",
            dump_s,
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(Path::new(&manifest).exists());

    let apply = |c: &TestCluster| {
        c.plugin(
            "migrate-db",
            &[
                "apply",
                "-n",
                NS,
                "--profile",
                "fate",
                "--from",
                "1.7.2",
                "--to",
                "1.9.0",
                "--backup",
                &manifest,
                "--yes",
            ],
        )
    };
    // A write after the dump: the backup no longer holds everything.
    sql(
        &c,
        "INSERT INTO session_main (session_id, status) VALUES ('late', 'NEW')",
    );
    let o = apply(&c);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("was written after the backup")
            && text(&o).contains("table session_main has 3 rows, the backup 2"),
        "{}",
        text(&o)
    );
    assert!(!has_column(&c, "t_storage_table_meta", "f_origin"));
    sql(&c, "DELETE FROM session_main WHERE session_id = 'late'");

    let o = apply(&c);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(has_column(&c, "t_task", "f_error_report"));
    let recorded = sql(
        &c,
        "SELECT DISTINCT backup FROM kubectl_upgrade_schema_history",
    );
    assert!(
        recorded.trim().starts_with(&format!("{manifest} sha256:")),
        "{recorded}"
    );

    // Rollback: the recorded backup restored over the migrated database.
    let o = c.plugin(
        "backup",
        &[
            "restore",
            dump_s,
            "-n",
            NS,
            "--profile",
            "fate",
            "--replace",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!has_column(&c, "t_storage_table_meta", "f_origin"));
    assert!(!has_column(&c, "t_task", "f_error_report"));
    assert_eq!(before, rows(&c), "the rows after the rollback");
    let s = c.plugin("migrate-db", &["status", "-n", NS, "--profile", "fate"]);
    assert_eq!(s.status.code(), Some(0), "{}", text(&s));
    assert!(text(&s).contains("no history table"), "{}", text(&s));
}
