//! Figures for `kubectl upgrade-migrate-db apply` on the simulated cluster, printed side by side
//! with the manual way against the same MariaDB server in the same pod: `kubectl exec -i POD --
//! mariadb DB < script` (the seed guide's way, through the same exec path).
//!
//! - each script of the FATE chain (1.7.2 → 1.8.0 → 1.9.0) on a fresh v1.7.2 fixture database:
//!   the plugin's whole `apply` (login, lock, history, the statements one by one, the history
//!   read back) ÷ the client fed the script (target ≤ 1.3);
//! - the per-statement overhead: a script of `BENCH_STATEMENTS` (default 200) row statements
//!   (`DO 0`, each recorded in its own transaction) and one of as many session statements
//!   (`SET @v = …`, not recorded), (plugin − client) ÷ statements.
//!
//! `BENCH_ROUNDS` (default 3) sets how many alternating rounds are run; medians are printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;

const NS: &str = "fate-9999";

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-upgrade-migrate-db"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `kubectl exec -i … mariadb [DB] < input`, timed; panics when it fails.
fn client(c: &TestCluster, database: Option<&str>, input: &str) -> Duration {
    let mut args = vec![
        "exec",
        "-i",
        "-n",
        NS,
        "deploy/mysql",
        "--",
        "mariadb",
        "-uroot",
        "--batch",
    ];
    args.extend(database);
    let started = Instant::now();
    let r = c.kubectl_stdin(&args, Some(input));
    let took = started.elapsed();
    assert_eq!(r.code, 0, "mariadb failed: {}", r.stderr);
    took
}

/// A fresh v1.7.2 database.
fn reset(c: &TestCluster) {
    let fixture = std::fs::read_to_string(repo().join("sql/fate/fixtures/eggroll_meta-1.7.2.sql"))
        .expect("bench setup");
    client(
        c,
        None,
        &format!("DROP DATABASE IF EXISTS eggroll_meta;\n{fixture}"),
    );
}

fn apply(c: &TestCluster, dir: &Path, from: &str, to: &str) -> Duration {
    let started = Instant::now();
    let out = Command::new(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "apply",
            "-n",
            NS,
            "--profile",
            "fate",
            "--from",
            from,
            "--to",
            to,
            "--no-backup",
            "--yes",
            "--scripts-dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("plugin runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn main() {
    let rounds = env_num("BENCH_ROUNDS", 3).max(1);
    let n = env_num("BENCH_STATEMENTS", 200).max(1);
    let c = TestCluster::start(&["fate-1.7.2-existing-pvc.yaml"]).expect("cluster");
    let deadline = Instant::now() + Duration::from_secs(120);
    while c
        .kubectl_stdin(
            &[
                "exec",
                "-i",
                "-n",
                NS,
                "deploy/mysql",
                "--",
                "mariadb",
                "-uroot",
            ],
            Some("SELECT 1;"),
        )
        .code
        != 0
    {
        assert!(Instant::now() < deadline, "MariaDB did not start");
        std::thread::sleep(Duration::from_millis(200));
    }

    let fate = repo().join("sql/fate");
    let step1 = std::fs::read_to_string(fate.join("1.7.2-1.8.0.sql")).expect("bench setup");
    let step2 = std::fs::read_to_string(fate.join("1.8.0-1.9.0.sql")).expect("bench setup");
    // Synthetic chains for the per-statement cost, 1.9.0 -> 1.9.1 (rows) and -> 1.10.0
    // (session), run on top of the migrated database.
    let dir = c.dir.path().join("bench-scripts");
    std::fs::create_dir_all(&dir).expect("bench setup");
    std::fs::write(dir.join("1.7.2-1.8.0.sql"), &step1).expect("bench setup");
    std::fs::write(dir.join("1.8.0-1.9.0.sql"), &step2).expect("bench setup");
    let rows_script = "DO 0;\n".repeat(n);
    let session_script: String = (0..n).map(|i| format!("SET @v = {i};\n")).collect();
    std::fs::write(dir.join("1.9.0-1.9.1.sql"), &rows_script).expect("bench setup");
    std::fs::write(dir.join("1.9.1-1.10.0.sql"), &session_script).expect("bench setup");

    let mut t = [(); 8].map(|_| Vec::new());
    for _ in 0..rounds {
        reset(&c);
        t[0].push(client(&c, Some("eggroll_meta"), &step1));
        t[1].push(client(&c, Some("eggroll_meta"), &step2));
        t[2].push(client(&c, Some("eggroll_meta"), &rows_script));
        t[3].push(client(&c, Some("eggroll_meta"), &session_script));
        reset(&c);
        t[4].push(apply(&c, &dir, "1.7.2", "1.8.0"));
        t[5].push(apply(&c, &dir, "1.8.0", "1.9.0"));
        t[6].push(apply(&c, &dir, "1.9.0", "1.9.1"));
        t[7].push(apply(&c, &dir, "1.9.1", "1.10.0"));
    }
    let m: Vec<Duration> = t.into_iter().map(median).collect();
    println!(
        "upgrade-migrate-db apply vs `kubectl exec -i POD -- mariadb DB < script` (same server), median of {rounds} rounds"
    );
    println!(
        "{:<22} {:>10} {:>14} {:>12} {:>8}",
        "script", "statements", "mariadb <  s", "apply  s", "ratio"
    );
    let names = [
        ("1.7.2-1.8.0.sql", 9),
        ("1.8.0-1.9.0.sql", 21),
        ("DO 0 x N (rows)", n),
        ("SET @v x N (session)", n),
    ];
    for (i, (name, count)) in names.iter().enumerate() {
        let (base, ours) = (m[i], m[i + 4]);
        println!(
            "{name:<22} {count:>10} {:>14} {:>12} {:>8.2}",
            secs(base),
            secs(ours),
            ours.as_secs_f64() / base.as_secs_f64()
        );
    }
    let chain_base = m[0] + m[1];
    let chain_ours = m[4] + m[5];
    println!(
        "{:<22} {:>10} {:>14} {:>12} {:>8.2}   (target <= 1.3)",
        "FATE chain",
        30,
        secs(chain_base),
        secs(chain_ours),
        chain_ours.as_secs_f64() / chain_base.as_secs_f64()
    );
    for (label, i) in [("rows statement (recorded)", 2), ("session statement", 3)] {
        let over = m[i + 4].as_secs_f64() - m[i].as_secs_f64();
        println!(
            "per-statement overhead, {label}: {:.2} ms",
            over * 1000.0 / n as f64
        );
    }
}
