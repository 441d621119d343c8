//! `kubectl upgrade-migrate-db` end to end on the simulated cluster with a real MariaDB: the
//! KubeFATE fixture database (v1.7.2) through 1.8.0 to 1.9.0, an apply killed with SIGKILL
//! mid-script and resumed at the next statement, a drifted script refused and repaired, two
//! applies at once (one waits on the lock), a statement failing in the middle of a script
//! (reported exactly, resumed after the fix), and a baseline checked against the profile's
//! fingerprint.
//!
//! Scripts that need a pause at a known statement get a *gate*: `DO GET_LOCK('…gate', 120)`
//! inserted in a copy of the real script (passed with `--scripts-dir`), while the test holds
//! that lock from its own connection, so the apply is stopped exactly there.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, plugin_binary, text};

const NS: &str = "fate-9999";
const GATE: &str = "migrate-db-test-gate";

fn migrate(c: &TestCluster, args: &[&str]) -> Output {
    c.plugin("migrate-db", args)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A FATE v1.7.2 cluster whose MariaDB answers. The tests need MariaDB installed
/// (scripts/test installs it) and fail without it.
fn fate() -> Option<TestCluster> {
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
    Some(c)
}

fn sql_try(c: &TestCluster, query: &str) -> Option<String> {
    sql_run(c, query).ok()
}

fn sql_run(c: &TestCluster, query: &str) -> Result<String, String> {
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
    if r.code == 0 {
        Ok(r.stdout)
    } else {
        Err(format!("exit {}: {}{}", r.code, r.stdout, r.stderr))
    }
}

fn sql(c: &TestCluster, query: &str) -> String {
    sql_run(c, query).unwrap_or_else(|e| {
        panic!(
            "query failed: {query}: {e}\n{}",
            c.pod_report(NS, "deploy/mysql")
        )
    })
}

fn columns(c: &TestCluster, table: &str) -> Vec<String> {
    sql(
        c,
        &format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'eggroll_meta' \
             AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

fn has_column(c: &TestCluster, table: &str, column: &str) -> bool {
    columns(c, table).iter().any(|col| col == column)
}

/// The fixture's rows, over the columns every version has.
fn data(c: &TestCluster) -> String {
    [
        "SELECT f_job_id, f_role, f_party_id, f_status FROM t_job ORDER BY 1, 2, 3",
        "SELECT f_task_id, f_role, f_status FROM t_task ORDER BY 1, 2",
        "SELECT f_model_id, f_model_version FROM t_machine_learning_model_info ORDER BY 1, 2",
        "SELECT f_name, f_namespace FROM t_storage_table_meta ORDER BY 1, 2",
        "SELECT server_node_id, host, port FROM server_node ORDER BY 1",
    ]
    .iter()
    .map(|q| sql(c, q))
    .collect::<Vec<_>>()
    .join("--\n")
}

fn history(c: &TestCluster) -> Vec<String> {
    sql(
        c,
        "SELECT id, kind, script, first_statement, reached, IFNULL(in_flight, '-'), success, \
         finished IS NOT NULL FROM kubectl_upgrade_schema_history ORDER BY id",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

const ADDED_1_8_0: &[(&str, &str)] = &[
    ("t_storage_table_meta", "f_origin"),
    ("t_storage_table_meta", "f_disable"),
];
const ADDED_1_9_0: &[(&str, &str)] = &[
    ("t_machine_learning_model_info", "f_archive_sha256"),
    ("t_machine_learning_model_info", "f_archive_from_ip"),
    ("t_task", "f_run_port"),
    ("t_task", "f_kill_status"),
    ("t_task", "f_error_report"),
];

fn assert_columns(c: &TestCluster, cols: &[(&str, &str)], present: bool) {
    for (t, col) in cols {
        assert_eq!(has_column(c, t, col), present, "{t}.{col} present");
    }
}

/// A copy of the FATE scripts, with `edit` applied to 1.8.0-1.9.0.sql.
fn scripts_dir(dir: &Path, edit: impl Fn(&str) -> String) -> PathBuf {
    let out = dir.join("scripts");
    std::fs::create_dir_all(&out).unwrap();
    for file in ["1.7.2-1.8.0.sql", "1.8.0-1.9.0.sql"] {
        let text = std::fs::read_to_string(repo().join("sql/fate").join(file)).unwrap();
        let text = if file == "1.8.0-1.9.0.sql" {
            edit(&text)
        } else {
            text
        };
        std::fs::write(out.join(file), text).unwrap();
    }
    out
}

/// 1.8.0-1.9.0.sql with a gate after its second block (statement 9 of 22).
fn gated(text: &str) -> String {
    let marker = "-- t_task.f_run_port";
    assert!(text.contains(marker));
    text.replacen(
        marker,
        &format!("DO GET_LOCK('{GATE}', 120);\n\n{marker}"),
        1,
    )
}

/// The test's own connection holding the gate lock until dropped.
struct Gate {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Gate {
    fn hold(c: &TestCluster) -> Gate {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args([
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
                "--unbuffered",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl exec runs");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "SELECT GET_LOCK('{GATE}', 10);").unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "1", "the test could not take the gate");
        Gate {
            child,
            stdin: Some(stdin),
        }
    }

    fn release(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until a session other than the poller's waits on the gate.
fn wait_at_gate(c: &TestCluster, apply: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = sql(
            c,
            &format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
                 AND INFO LIKE '%{GATE}%' AND INFO NOT LIKE '%PROCESSLIST%'"
            ),
        );
        if n.trim() == "1" {
            return;
        }
        if let Some(status) = apply.try_wait().unwrap() {
            panic!("apply ended before the gate: {status}");
        }
        assert!(Instant::now() < deadline, "apply never reached the gate");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn_apply(c: &TestCluster, args: &[&str]) -> Child {
    Command::new(plugin_binary("migrate-db"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apply starts")
}

#[test]
fn fate_chain_1_7_2_to_1_8_0_to_1_9_0_recorded_and_data_kept() {
    let Some(c) = fate() else { return };
    let before = data(&c);
    assert_columns(&c, ADDED_1_8_0, false);

    // Offline plan: the chain, sha256, statement counts.
    let plan = migrate(
        &c,
        &[
            "plan",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.9.0",
            "-o",
            "json",
        ],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["scripts"][0]["file"], "1.7.2-1.8.0.sql");
    assert_eq!(doc["scripts"][0]["statement_count"], 9);
    assert_eq!(doc["scripts"][1]["statement_count"], 21);

    // Without a backup or --no-backup, nothing runs (bad input).
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.8.0",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Without a terminal and without --yes it does not ask, and changes nothing.
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.8.0",
            "--no-backup",
        ],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("--yes"), "{}", text(&o));
    assert_columns(&c, ADDED_1_8_0, false);
    // --dry-run prints the plan and changes nothing.
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.8.0",
            "--no-backup",
            "--dry-run",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("runs statements 1-9"), "{}", text(&o));
    assert_eq!(
        sql(&c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'kubectl_upgrade_schema_history'").trim(),
        "0",
        "a dry run created the history table"
    );

    // 1.7.2 -> 1.8.0.
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.8.0",
            "--no-backup",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("history verified"), "{}", text(&o));
    assert_columns(&c, ADDED_1_8_0, true);
    assert_columns(&c, ADDED_1_9_0, false);
    assert_eq!(history(&c), ["1\trun\t1.7.2-1.8.0.sql\t1\t9\t-\t1\t1"]);
    let backup = sql(
        &c,
        "SELECT backup, tool_version FROM kubectl_upgrade_schema_history",
    );
    assert!(
        backup.starts_with("none: --no-backup\tkubectl-upgrade-migrate-db "),
        "{backup}"
    );

    // 1.8.0 -> 1.9.0, the version taken from the history.
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to",
            "1.9.0",
            "--no-backup",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_columns(&c, ADDED_1_9_0, true);
    assert_eq!(before, data(&c), "the fixture's rows changed");
    assert_eq!(
        sql(
            &c,
            "SELECT DISTINCT IFNULL(f_kill_status, 'NULL') FROM t_task"
        )
        .trim(),
        "1"
    );
    assert_eq!(history(&c).len(), 2);

    // Again: nothing to run, nothing recorded.
    let o = migrate(
        &c,
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
            "--no-backup",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("already applied"), "{}", text(&o));
    assert_eq!(history(&c).len(), 2);

    let s = migrate(&c, &["status", "-n", NS, "--profile", "fate", "-o", "json"]);
    assert_eq!(s.status.code(), Some(0), "{}", text(&s));
    let doc: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    assert_eq!(doc["version"], "1.9.0");
    assert_eq!(doc["scripts"][0]["state"]["state"], "applied");
    assert_eq!(doc["scripts"][1]["state"]["state"], "applied");
    assert_eq!(doc["lock"], serde_json::Value::Null);
    assert_eq!(doc["rows"].as_array().unwrap().len(), 2);
}

#[test]
fn a_killed_apply_resumes_at_the_next_statement() {
    let Some(c) = fate() else { return };
    let before = data(&c);
    let dir = scripts_dir(c.dir.path(), gated);
    let dir_s = dir.to_str().unwrap();
    let args = [
        "apply",
        "-n",
        NS,
        "--profile",
        "fate",
        "--from",
        "1.7.2",
        "--to",
        "1.9.0",
        "--no-backup",
        "--yes",
        "--scripts-dir",
        dir_s,
    ];
    let gate = Gate::hold(&c);
    let mut apply = spawn_apply(&c, &args);
    wait_at_gate(&c, &mut apply);
    apply.kill().expect("SIGKILL");
    let _ = apply.wait();
    // Statements 1-8 of 1.8.0-1.9.0.sql ran (its first two columns are there); the last one
    // recorded is 7, the EXECUTE of the second column (8 only deallocates a prepared
    // statement, which leaves nothing to record), and the gate statement did not run.
    assert_columns(&c, &ADDED_1_9_0[..2], true);
    assert_columns(&c, &ADDED_1_9_0[2..], false);
    assert_eq!(
        history(&c),
        [
            "1\trun\t1.7.2-1.8.0.sql\t1\t9\t-\t1\t1",
            "2\trun\t1.8.0-1.9.0.sql\t1\t7\t-\t0\t0"
        ]
    );
    let s = migrate(
        &c,
        &[
            "status",
            "-n",
            NS,
            "--profile",
            "fate",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert!(
        text(&s).contains("interrupted") && text(&s).contains("resumes at statement 8 of 22"),
        "{}",
        text(&s)
    );
    gate.release();

    let o = migrate(&c, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("statements 8-22 of 22 ran")
            && text(&o).contains("resumed at statement 8; statements 1-7 had committed before, 5 session statements replayed"),
        "{}",
        text(&o)
    );
    assert_columns(&c, ADDED_1_9_0, true);
    assert_eq!(before, data(&c), "the fixture's rows changed");
    let h = history(&c);
    assert_eq!(h[2], "3\trun\t1.8.0-1.9.0.sql\t8\t22\t-\t1\t1");
}

#[test]
fn a_drifted_script_is_refused_until_repaired() {
    let Some(c) = fate() else { return };
    let dir = scripts_dir(c.dir.path(), |t| t.to_string());
    let dir_s = dir.to_str().unwrap();
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            "1.7.2",
            "--to",
            "1.8.0",
            "--no-backup",
            "--yes",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Someone edits the applied script.
    let path = dir.join("1.7.2-1.8.0.sql");
    let mut edited = std::fs::read_to_string(&path).unwrap();
    edited.push_str("\nSELECT 1;\n");
    std::fs::write(&path, &edited).unwrap();

    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to",
            "1.9.0",
            "--no-backup",
            "--yes",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("1.7.2-1.8.0.sql changed since it was applied")
            && text(&o).contains("drift"),
        "{}",
        text(&o)
    );
    assert_columns(&c, ADDED_1_9_0, false);
    assert_eq!(history(&c).len(), 1, "a refused apply wrote history");
    let s = migrate(
        &c,
        &[
            "status",
            "-n",
            NS,
            "--profile",
            "fate",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(s.status.code(), Some(1), "{}", text(&s));
    assert!(text(&s).contains("drift"), "{}", text(&s));

    // A dry run of the repair says what it would record and records nothing.
    let before = history(&c);
    let o = migrate(
        &c,
        &[
            "repair",
            "-n",
            NS,
            "--profile",
            "fate",
            "--script",
            "1.7.2-1.8.0.sql",
            "--reason",
            "a trailing SELECT only",
            "--dry-run=client",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("dry run: nothing recorded"),
        "{}",
        text(&o)
    );
    assert_eq!(history(&c), before);

    // Repair needs a reason and records who and why.
    let o = migrate(
        &c,
        &[
            "repair",
            "-n",
            NS,
            "--profile",
            "fate",
            "--script",
            "1.7.2-1.8.0.sql",
            "--reason",
            "a trailing SELECT only",
            "--yes",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        sql(
            &c,
            "SELECT kind, reason FROM kubectl_upgrade_schema_history WHERE id = 2"
        )
        .trim(),
        "repair\ta trailing SELECT only"
    );
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to",
            "1.9.0",
            "--no-backup",
            "--yes",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_columns(&c, ADDED_1_9_0, true);
    // A repair of a clean script is refused.
    let o = migrate(
        &c,
        &[
            "repair",
            "-n",
            NS,
            "--profile",
            "fate",
            "--script",
            "1.8.0-1.9.0.sql",
            "--reason",
            "x",
            "--yes",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing to repair"), "{}", text(&o));
}

#[test]
fn two_applies_at_once_one_waits_for_the_lock() {
    let Some(c) = fate() else { return };
    let dir = scripts_dir(c.dir.path(), gated);
    let dir_s = dir.to_str().unwrap();
    let args = [
        "apply",
        "-n",
        NS,
        "--profile",
        "fate",
        "--from",
        "1.7.2",
        "--to",
        "1.9.0",
        "--no-backup",
        "--yes",
        "--scripts-dir",
        dir_s,
    ];
    let gate = Gate::hold(&c);
    let mut first = spawn_apply(&c, &args);
    wait_at_gate(&c, &mut first);

    let s = migrate(
        &c,
        &[
            "status",
            "-n",
            NS,
            "--profile",
            "fate",
            "--scripts-dir",
            dir_s,
        ],
    );
    assert!(
        text(&s).contains("Lock: held by connection"),
        "{}",
        text(&s)
    );

    let mut second_args = args.to_vec();
    second_args.extend(["--timeout", "2s"]);
    let started = Instant::now();
    let o = migrate(&c, &second_args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("holds the lock") && text(&o).contains("waiting up to 2s"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(history(&c).len(), 2, "the second apply wrote history");

    gate.release();
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let o = migrate(&c, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("already applied"), "{}", text(&o));
    assert_eq!(history(&c).len(), 2);
}

#[test]
fn a_failing_statement_is_reported_exactly_and_resumes_after_the_fix() {
    let Some(c) = fate() else { return };
    let before = data(&c);
    let typo = |t: &str| {
        t.replacen(
            "'ALTER TABLE t_task ADD COLUMN f_run_port INT NULL'",
            "'ALTER TABLE t_tasks ADD COLUMN f_run_port INT NULL'",
            1,
        )
    };
    let dir = scripts_dir(c.dir.path(), typo);
    let dir_s = dir.to_str().unwrap();
    let args = [
        "apply",
        "-n",
        NS,
        "--profile",
        "fate",
        "--from",
        "1.7.2",
        "--to",
        "1.9.0",
        "--no-backup",
        "--yes",
        "--scripts-dir",
        dir_s,
    ];
    let o = migrate(&c, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("failed 1.8.0-1.9.0.sql: statement 11 of 21 (line 79: EXECUTE fate_stmt) failed: ERROR 1146: Table 'eggroll_meta.t_tasks' doesn't exist"),
        "{out}"
    );
    assert!(
        out.contains("statements 1-7 are recorded as committed"),
        "{out}"
    );
    assert!(out.contains("it resumes at statement 8"), "{out}");
    assert_columns(&c, &ADDED_1_9_0[..2], true);
    assert_columns(&c, &ADDED_1_9_0[2..], false);
    let err = sql(
        &c,
        "SELECT error FROM kubectl_upgrade_schema_history WHERE id = 2",
    );
    assert!(
        err.contains("statement 11 (line 79: EXECUTE fate_stmt): ERROR 1146"),
        "{err}"
    );

    // Fix the script: the run resumes after the last committed statement.
    let path = dir.join("1.8.0-1.9.0.sql");
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("t_tasks", "t_task");
    std::fs::write(&path, fixed).unwrap();
    let o = migrate(&c, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("resumed at statement 8"), "{}", text(&o));
    assert_columns(&c, ADDED_1_9_0, true);
    assert_eq!(before, data(&c));
    assert_eq!(
        history(&c).last().unwrap(),
        "3\trun\t1.8.0-1.9.0.sql\t8\t21\t-\t1\t1"
    );
}

#[test]
fn baseline_checks_the_fingerprint_and_is_never_repeated() {
    let Some(c) = fate() else { return };
    let o = migrate(
        &c,
        &[
            "baseline",
            "-n",
            NS,
            "--profile",
            "fate",
            "--version",
            "1.8.0",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("t_storage_table_meta.f_origin is missing"),
        "{}",
        text(&o)
    );
    // A dry run shows what would be recorded and records nothing: not even the table.
    let o = migrate(
        &c,
        &[
            "baseline",
            "-n",
            NS,
            "--profile",
            "fate",
            "--version",
            "1.7.2",
            "--dry-run",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("matches the fate 1.7.2 fingerprint"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("dry run: nothing recorded"),
        "{}",
        text(&o)
    );
    assert_eq!(
        sql(
            &c,
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_name = 'kubectl_upgrade_schema_history'"
        )
        .trim(),
        "0"
    );
    let o = migrate(
        &c,
        &[
            "baseline",
            "-n",
            NS,
            "--profile",
            "fate",
            "--version",
            "1.7.2",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(history(&c), ["1\tbaseline\tbaseline 1.7.2\t0\t0\t-\t1\t1"]);
    let o = migrate(
        &c,
        &[
            "baseline",
            "-n",
            NS,
            "--profile",
            "fate",
            "--version",
            "1.7.2",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("already has a migration history"),
        "{}",
        text(&o)
    );
    // The history now knows where to start.
    let o = migrate(
        &c,
        &[
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to",
            "1.9.0",
            "--no-backup",
            "--yes",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_columns(&c, ADDED_1_9_0, true);
}

/// Issue 10: without `--from` the chain starts where the schema is — the history's version,
/// else the version the application runs, but only while that is below the target and the
/// schema has that version's fingerprint. An application already upgraded (its version is the
/// target, or its schema is behind it) is refused with what to pass, and nothing changes.
#[test]
fn without_from_the_chain_starts_where_the_schema_is() {
    let Some(c) = fate() else { return };
    let set_python = |tag: &str| {
        c.kubectl(&[
            "set",
            "image",
            "deploy/python",
            &format!("python=federatedai/python:{tag}"),
            "-n",
            NS,
        ])
        .ok();
    };
    let apply = |to: &str| {
        migrate(
            &c,
            &[
                "apply",
                "-n",
                NS,
                "--profile",
                "fate",
                "--to",
                to,
                "--no-backup",
                "--yes",
            ],
        )
    };
    let no_history = |c: &TestCluster| {
        sql(
            c,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'eggroll_meta' \
             AND TABLE_NAME = 'kubectl_upgrade_schema_history'",
        )
        .trim()
            == "0"
    };

    // 1.8.0's images on a 1.7.2 schema: upgraded without its scripts; starting at 1.8.0
    // would skip 1.7.2-1.8.0.sql for good.
    set_python("1.8.0-release");
    let o = apply("1.9.0");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("its schema does not look like that of 1.8.0, the version the application runs (t_storage_table_meta.f_origin is missing"),
        "{}",
        text(&o)
    );
    // The target already runs: its version says nothing about the schema.
    let o = apply("1.8.0");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the application already runs 1.8.0") && text(&o).contains("pass --from"),
        "{}",
        text(&o)
    );
    assert!(no_history(&c), "nothing changed");
    assert_columns(&c, ADDED_1_8_0, false);
    assert_columns(&c, ADDED_1_9_0, false);

    // Not upgraded yet: the running version, its fingerprint matching, is where the chain starts.
    set_python("1.7.2-release");
    let plan = migrate(
        &c,
        &[
            "plan",
            "-n",
            NS,
            "--profile",
            "fate",
            "--to",
            "1.9.0",
            "-o",
            "json",
        ],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(doc["scripts"][0]["file"], "1.7.2-1.8.0.sql", "{doc}");
    assert_eq!(doc["scripts"][1]["file"], "1.8.0-1.9.0.sql", "{doc}");
    let o = apply("1.8.0");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("eggroll_meta is at 1.7.2 (from the version the application runs"),
        "{}",
        text(&o)
    );
    assert_columns(&c, ADDED_1_8_0, true);

    // After the application's upgrade the history says where the schema is.
    set_python("1.9.0-release");
    let o = apply("1.9.0");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("eggroll_meta is at 1.8.0 (from the migration history)"),
        "{}",
        text(&o)
    );
    assert_columns(&c, ADDED_1_9_0, true);
}
