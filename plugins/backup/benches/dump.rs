//! Figures for `kubectl upgrade-backup` on the simulated cluster's real MariaDB, printed side by
//! side with the baseline run against the same server in the same pod:
//! - dump: the plugin streaming through exec to a local file (with every check it makes:
//!   CHECKSUM TABLE before and after, the pod's sha256, the inspection here) divided by
//!   `mariadb-dump` run directly with the same options into a local file (target ≤ 1.25,
//!   aim 1.05), and divided by the seed's manual route through the same API server,
//!   `kubectl exec POD -- mariadb-dump -uroot FLAGS > FILE`, timed in the same rounds;
//! - the plugin's CPU time per dump (user + sys, from `/usr/bin/time`), and the other
//!   build's when one is named, with the simulated cluster's during the same dump (it runs
//!   in this process: its user + sys from `/proc/self/stat`);
//! - restore: the plugin's `restore --replace` (its verification pass included) divided by
//!   `mariadb < FILE` (target ≤ 1.25);
//! - the cost of verification: `verify FILE` and `verify --restore-test`;
//! - the plugin's peak resident memory while dumping at two database sizes (target: flat,
//!   under 50 MiB).
//!
//! Every timed command is preceded by `sync`, so the dirty pages one run left (its dump file,
//! the server's writes) are not written back while the next one is timed; the baseline and
//! the plugin are treated alike.
//!
//! The plugin's dump and restore run with `KUBECTL_UPGRADE_BACKUP_TIMINGS=1` and their
//! per-phase times are printed under their figures. `BENCH_ROUNDS=N` (default 1) repeats the dump pair N times,
//! alternating, and reports the median ratio; `BENCH_BASELINE_PLUGIN=PATH` times another build
//! of the plugin (an older one) in the same rounds, so a change is measured side by side.
//!
//! The database has three tables, one of them BLOBs. Its size is 128 MiB times `BENCH_SCALE`
//! (`BENCH_SCALE=8` for the ≈1 GiB of the issue; `0.25` for a quick look). The baseline runs
//! `mariadb-dump` and `mariadb` inside the pod's mount and network namespaces (`nsenter`), as
//! a person in the pod would; the plugin goes through the API server's exec.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;

const DB: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: bench}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: db-data, namespace: bench}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 20Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: bench}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: db-data}}
      containers:
      - name: mariadb
        image: mariadb:10.11
        env:
        - {name: MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, value: "1"}
        volumeMounts:
        - {name: data, mountPath: /var/lib/mysql}
"#;

/// The same options the plugin gives a full dump.
const FLAGS: &[&str] = &[
    "--single-transaction",
    "--hex-blob",
    "--comments",
    "--dump-date",
    "--default-character-set=utf8mb4",
    "--routines",
    "--events",
    "--triggers",
    "--databases",
    "bench",
];

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-upgrade-backup"))
}

fn scale() -> f64 {
    std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs a command in the pod's namespaces, as the baseline does.
fn in_pod(pid: u32, argv: &[&str]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-m", "-n", "--"])
        .args(argv);
    cmd
}

fn sql(pid: u32, text: &str) {
    let ok = in_pod(pid, &["mariadb", "-uroot", "-e", text])
        .status()
        .expect("mariadb");
    assert!(ok.success(), "{text}");
}

/// Adds about `bytes` of data: 60% BLOBs of 1 KiB, the rest text rows and numbers.
fn grow(pid: u32, bytes: u64, first: u64) -> u64 {
    let blobs = bytes * 6 / 10 / 1024;
    let texts = bytes * 4 / 10 / 200;
    let mut done = 0;
    let step = 100_000;
    while done < blobs.max(texts) {
        let b = step.min(blobs.saturating_sub(done));
        let t = step.min(texts.saturating_sub(done));
        let start = first + done + 1;
        let mut q = String::from("USE bench;");
        if b > 0 {
            q.push_str(&format!(
                "INSERT INTO blobs SELECT seq, RANDOM_BYTES(1024) FROM seq_{start}_to_{};",
                start + b - 1
            ));
        }
        if t > 0 {
            q.push_str(&format!(
                "INSERT INTO texts SELECT seq, CONCAT('row ', seq, ' ', REPEAT(MD5(seq), 5), ' it''s (quoted); '), NOW() - INTERVAL seq SECOND FROM seq_{start}_to_{};
                 INSERT INTO nums SELECT seq, seq * 7, seq / 3 FROM seq_{start}_to_{};",
                start + t - 1,
                start + t - 1
            ));
        }
        sql(pid, &q);
        done += step;
    }
    first + blobs.max(texts)
}

/// Wall time of a command.
fn timed(cmd: Command) -> Duration {
    timed_output(cmd).0
}

/// Wall time of a command and its stderr, after `sync` (see the module docs).
fn timed_output(mut cmd: Command) -> (Duration, String) {
    let synced = Command::new("sync").status().expect("sync runs");
    assert!(synced.success(), "sync failed");
    let start = Instant::now();
    let out = cmd.output().expect("runs");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?}: {stderr}");
    (took, stderr)
}

/// The `timings:` line a plugin run printed.
fn timings_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.starts_with("timings:"))
        .unwrap_or("timings: (not printed by this build)")
        .to_string()
}

/// What `/usr/bin/time -f` prints for [`with_cpu_time`].
const CPU_MARK: &str = "bench-cpu-seconds ";

/// The command run under `/usr/bin/time`, which adds its user + sys time to stderr.
fn with_cpu_time(cmd: &Command) -> Command {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg(format!("{CPU_MARK}%U %S"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    timed
}

/// User + sys seconds from the line [`with_cpu_time`] added.
fn cpu_seconds(stderr: &str) -> f64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(CPU_MARK))
        .map(|t| {
            t.split_whitespace()
                .filter_map(|v| v.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(f64::NAN)
}

/// This process's user + sys seconds so far (`/proc/self/stat` fields 14 and 15, in clock
/// ticks): the simulated cluster's work, which runs on this process's threads.
fn own_cpu_seconds() -> f64 {
    let ticks_per_second = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let ticks: f64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks / ticks_per_second
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn backup(c: &TestCluster, args: &[&str]) -> Command {
    backup_with(&plugin(), c, args)
}

fn backup_with(binary: &Path, c: &TestCluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Peak resident memory of a run in KiB (the high-water mark `time -v` reports).
fn peak_rss(c: &TestCluster, args: &[&str]) -> u64 {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("time -v");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn main() {
    if !Path::new("/usr/sbin/mariadbd").exists() {
        println!("skipped: MariaDB is not installed");
        return;
    }
    // `cargo bench` passes --bench; nothing else is taken.
    let size = (128.0 * 1024.0 * 1024.0 * scale()) as u64;
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(DB);
    c.wait_for(
        &["deploy", "db", "-n", "bench"],
        "{.status.readyReplicas}",
        "1",
        Duration::from_secs(120),
    );
    let uid = c.jsonpath(
        &["pods", "-n", "bench", "-l", "app=db"],
        "{.items[0].metadata.uid}",
    );
    let pod = c.jsonpath(
        &["pods", "-n", "bench", "-l", "app=db"],
        "{.items[0].metadata.name}",
    );
    let pid = c
        .guard
        .kubelet()
        .container_pid(&uid, "mariadb")
        .expect("the database container runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !in_pod(pid, &["mariadb", "-uroot", "-e", "SELECT 1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < deadline, "MariaDB never answered");
        std::thread::sleep(Duration::from_millis(300));
    }
    sql(
        pid,
        "CREATE DATABASE bench; USE bench;
         CREATE TABLE blobs (id BIGINT PRIMARY KEY, b LONGBLOB);
         CREATE TABLE texts (id BIGINT PRIMARY KEY, s VARCHAR(255), t DATETIME);
         CREATE TABLE nums (id BIGINT PRIMARY KEY, a BIGINT, f DOUBLE);",
    );
    let half = grow(pid, size / 2, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("half.sql");
    let rss_half = peak_rss(
        &c,
        &[
            "dump",
            "-n",
            "bench",
            "--target",
            "deploy/db",
            "--database",
            "bench",
            "--output",
            small.to_str().unwrap_or_default(),
            "--yes",
        ],
    );
    grow(pid, size / 2, half);

    println!(
        "kubectl upgrade-backup benchmark: database of about {:.0} MiB (BENCH_SCALE={})",
        mib(size),
        scale()
    );
    // Dump: the baseline straight into a local file, then the plugin through exec (and the
    // other build, when one is named), alternating for BENCH_ROUNDS rounds.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(1);
    let other = std::env::var_os("BENCH_BASELINE_PLUGIN").map(PathBuf::from);
    let direct = dir.path().join("direct.sql");
    let through_exec = dir.path().join("exec.sql");
    let file = dir.path().join("plugin.sql");
    let f = file.to_str().unwrap_or_default();
    let dump_args = [
        "dump",
        "-n",
        "bench",
        "--target",
        "deploy/db",
        "--database",
        "bench",
        "--output",
        f,
        "--yes",
    ];
    let (mut ratios, mut other_ratios) = (Vec::new(), Vec::new());
    let (mut exec_ratios, mut other_exec_ratios) = (Vec::new(), Vec::new());
    let (mut cpu, mut other_cpu) = (Vec::new(), Vec::new());
    let (mut sim_cpu, mut other_sim_cpu) = (Vec::new(), Vec::new());
    let (mut t_direct, mut t_plugin, mut t_exec) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut direct_bytes = 0;
    for round in 1..=rounds {
        let out = std::fs::File::create(&direct).expect("create");
        let mut cmd = in_pod(pid, &[&["mariadb-dump", "-uroot"], FLAGS].concat());
        cmd.stdout(out);
        t_direct = timed(cmd);
        direct_bytes = std::fs::metadata(&direct).map(|m| m.len()).unwrap_or(0);
        // The baseline's file is not needed any more: keep the disk free.
        let _ = std::fs::remove_file(&direct);
        // The seed's manual route: the same dump through the same API server's exec.
        let out = std::fs::File::create(&through_exec).expect("create");
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args(["exec", "-n", "bench", &pod, "-c", "mariadb", "--"])
            .args([&["mariadb-dump", "-uroot"], FLAGS].concat())
            .stdin(Stdio::null())
            .stdout(out);
        t_exec = timed(cmd);
        let _ = std::fs::remove_file(&through_exec);
        let mut cmd = backup(&c, &dump_args);
        cmd.env("KUBECTL_UPGRADE_BACKUP_TIMINGS", "1");
        let sim_before = own_cpu_seconds();
        let (took, stderr) = timed_output(with_cpu_time(&cmd));
        let sim = own_cpu_seconds() - sim_before;
        sim_cpu.push(sim);
        t_plugin = took;
        ratios.push(ratio(t_plugin, t_direct));
        exec_ratios.push(ratio(t_plugin, t_exec));
        cpu.push(cpu_seconds(&stderr));
        let mut line = format!(
            "  round {round}/{rounds}: mariadb-dump {:.2} s, plugin {:.2} s (ratio {:.2}), kubectl exec {:.2} s (plugin ratio {:.2}), plugin CPU {:.2} s (cluster {:.2} s)",
            t_direct.as_secs_f64(),
            t_plugin.as_secs_f64(),
            ratio(t_plugin, t_direct),
            t_exec.as_secs_f64(),
            ratio(t_plugin, t_exec),
            cpu_seconds(&stderr),
            sim
        );
        if let Some(bin) = &other {
            let mut cmd = backup_with(bin, &c, &dump_args);
            cmd.env("KUBECTL_UPGRADE_BACKUP_TIMINGS", "1");
            let sim_before = own_cpu_seconds();
            let (t_other, other_stderr) = timed_output(with_cpu_time(&cmd));
            let sim = own_cpu_seconds() - sim_before;
            other_sim_cpu.push(sim);
            other_ratios.push(ratio(t_other, t_direct));
            other_exec_ratios.push(ratio(t_other, t_exec));
            other_cpu.push(cpu_seconds(&other_stderr));
            line.push_str(&format!(
                ", {} {:.2} s (ratio {:.2}, CPU {:.2} s, cluster {:.2} s)",
                bin.display(),
                t_other.as_secs_f64(),
                ratio(t_other, t_direct),
                cpu_seconds(&other_stderr),
                sim
            ));
        }
        println!("{line}");
        println!("    plugin {}", timings_line(&stderr));
    }
    let rss_full = peak_rss(
        &c,
        &[
            "dump",
            "-n",
            "bench",
            "--target",
            "deploy/db",
            "--database",
            "bench",
            "--output",
            f,
            "--yes",
        ],
    );
    let dumped = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "  dump     mariadb-dump in the pod   {:>8.2} s   plugin through exec {:>8.2} s   ratio {:.2} (median of {rounds}; target <= 1.25, aim 1.05)   {:.0} MiB and {:.0} MiB of SQL   kubectl exec mariadb-dump {:.2} s, plugin ratio {:.2} (median of {rounds})",
        t_direct.as_secs_f64(),
        t_plugin.as_secs_f64(),
        median(ratios),
        mib(direct_bytes),
        mib(dumped),
        t_exec.as_secs_f64(),
        median(exec_ratios)
    );
    if let Some(bin) = &other {
        println!(
            "  dump     {}: ratio {:.2} (median of {rounds}, same rounds), to kubectl exec {:.2}",
            bin.display(),
            median(other_ratios),
            median(other_exec_ratios)
        );
    }
    let mut cpu_line = format!(
        "  cpu      plugin user+sys per dump {:.2} s, the simulated cluster's meanwhile {:.2} s (medians of {rounds})",
        median(cpu),
        median(sim_cpu)
    );
    if let Some(bin) = &other {
        cpu_line.push_str(&format!(
            "; {}: {:.2} s and {:.2} s",
            bin.display(),
            median(other_cpu),
            median(other_sim_cpu)
        ));
    }
    println!("{cpu_line}");
    // Verification on its own.
    let t_verify = timed(backup(&c, &["verify", f]));
    let t_restore_test = timed(backup(
        &c,
        &[
            "verify",
            f,
            "--restore-test",
            "-n",
            "bench",
            "--target",
            "deploy/db",
        ],
    ));
    println!(
        "  verify   file re-check             {:>8.2} s   with --restore-test {:>8.2} s   ({:.2} and {:.2} of the direct dump's time)",
        t_verify.as_secs_f64(),
        t_restore_test.as_secs_f64(),
        ratio(t_verify, t_direct),
        ratio(t_restore_test, t_direct)
    );
    // Restore: `mariadb < FILE` in the pod, then the plugin's restore of the same file.
    let input = std::fs::File::open(&file).expect("open");
    let mut cmd = in_pod(
        pid,
        &["mariadb", "-uroot", "--default-character-set=utf8mb4"],
    );
    cmd.stdin(input);
    let t_load = timed(cmd);
    let mut cmd = backup(
        &c,
        &[
            "restore",
            f,
            "-n",
            "bench",
            "--target",
            "deploy/db",
            "--replace",
            "--yes",
        ],
    );
    cmd.env("KUBECTL_UPGRADE_BACKUP_TIMINGS", "1");
    let (t_restore, restore_stderr) = timed_output(cmd);
    println!(
        "  restore  mariadb < FILE in the pod {:>8.2} s   plugin restore      {:>8.2} s   ratio {:.2} (target <= 1.25; includes its verification pass)",
        t_load.as_secs_f64(),
        t_restore.as_secs_f64(),
        ratio(t_restore, t_load)
    );
    println!("    plugin {}", timings_line(&restore_stderr));
    println!(
        "  memory   plugin peak RSS while dumping: {:.1} MiB at {:.0} MiB, {:.1} MiB at {:.0} MiB (target: flat, < 50 MiB)",
        rss_half as f64 / 1024.0,
        mib(size / 2),
        rss_full as f64 / 1024.0,
        mib(size)
    );
}
