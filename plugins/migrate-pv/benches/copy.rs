//! Figures for `kubectl upgrade-migrate-pv` on the simulated cluster, printed side by side with
//! a baseline run on the same disk:
//! - copy wall time of a generated tree (≈1 GiB: 100,000 small files and a few large ones)
//!   divided by `cp -a` of the same tree (target ≤ 1.3);
//! - copy + `--verify=checksum` divided by `cp -a` (target ≤ 1.6), the archive digested as it
//!   streams, beside the same copy checked the way it was before (`MIGRATE_PV_CHECKSUMS=separate`:
//!   the copy, then a pass hashing every file on both sides);
//! - the plugin's peak resident memory at two data sizes (target: flat, under 50 MiB);
//! - adopting 50 claims with the volume binder at a real controller-manager's period (15 s):
//!   one command with 50 pairs (target ≤ 2 periods + 10 s) beside 50 single adoptions one
//!   after another, and zero bytes copied.
//!
//! `BENCH_SCALE=0.1` makes the tree ten times smaller for a quick look (`0.5` is 50,000 files,
//! 0.51 GiB). Each copy figure is the median of `BENCH_ROUNDS` rounds (default 3) of cp -a and
//! the three copies, run one after another so that each round shares the machine's load.
//! `BENCH_ONLY=copy|adopt` (or `--only copy|adopt` after `--bench`) runs one part;
//! `BENCH_ONLY=checksum` only the copy and checksum ratios, at `BENCH_SCALE`. `BENCH_ADOPT_SINGLES=N` measures N
//! single adoptions instead of 50 (minutes less) and prints their mean × 50, labelled as an
//! extrapolation; `BENCH_ADOPT_CLAIMS` changes the 50.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-upgrade-migrate-pv"))
}

/// A small deterministic generator, so that runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Writes `small` files of 1–8 KiB in 1,000 directories and `large` files of `large_mb` MiB.
fn generate(root: &Path, small: usize, large: usize, large_mb: usize) -> u64 {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut total = 0u64;
    let mut buf = vec![0u8; 8192];
    for i in 0..small {
        let dir = root.join(format!("d{:03}", i % 1000));
        if i < 1000 {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        let len = 1024 + (rng.next() % 7168) as usize;
        rng.fill(&mut buf[..len]);
        std::fs::write(dir.join(format!("f{i}")), &buf[..len]).expect("write");
        total += len as u64;
    }
    let mut big = vec![0u8; 1 << 20];
    for i in 0..large {
        use std::io::Write;
        let mut f = std::fs::File::create(root.join(format!("large-{i}.bin"))).expect("create");
        for _ in 0..large_mb {
            rng.fill(&mut big);
            f.write_all(&big).expect("write");
        }
        total += (large_mb as u64) << 20;
    }
    total
}

fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Runs the plugin; returns wall time and its output.
fn run_plugin(c: &TestCluster, args: &[&str]) -> (Duration, String) {
    run_plugin_with(c, args, &[])
}

/// Runs the plugin with extra environment variables; returns wall time and its output.
fn run_plugin_with(c: &TestCluster, args: &[&str], env: &[(&str, &str)]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("plugin runs");
    let wall = start.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    (wall, text)
}

/// Peak RSS of one plugin run, measured with GNU time's `%M` (KiB).
fn measure_rss(c: &TestCluster, args: &[&str]) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let out = Command::new(time)
        .args(["-f", "%M"])
        .arg(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .output()
        .expect("time runs");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
}

fn volume_dir(c: &TestCluster, claim: &str) -> PathBuf {
    let pv = loop {
        let pv = c
            .kubectl(&[
                "get",
                "pvc",
                claim,
                "-n",
                "kubeflow",
                "-o",
                "jsonpath={.spec.volumeName}",
            ])
            .ok();
        if !pv.is_empty() {
            break pv;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    PathBuf::from(
        c.kubectl(&["get", "pv", &pv, "-o", "jsonpath={.spec.hostPath.path}"])
            .ok(),
    )
}

/// The median of some durations, in seconds.
fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(f64::total_cmp);
    secs[secs.len() / 2]
}

/// What one copy of the source is run as: its label, extra flags and environment.
struct Way {
    label: &'static str,
    flags: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    target: Option<f64>,
}

const WAYS: [Way; 3] = [
    Way {
        label: "copy (+ manifest check)",
        flags: &[],
        env: &[],
        target: Some(1.3),
    },
    Way {
        label: "copy + checksums, digested as it streams",
        flags: &["--verify=checksum"],
        env: &[],
        target: Some(1.6),
    },
    Way {
        label: "copy, then a checksum pass (before)",
        flags: &["--verify=checksum"],
        env: &[("MIGRATE_PV_CHECKSUMS", "separate")],
        target: None,
    },
];

/// Copy figures at `scale`; returns the plain copy's ratio and, unless `rss` is false, the
/// plugin's peak RSS in KiB.
fn copy_figures(scale: f64, rounds: usize, rss: bool) -> (f64, u64) {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    c.kubectl(&["scale", "sts/minio", "-n", "kubeflow", "--replicas=0"])
        .ok();
    while c.kubectl(&["get", "pod", "minio-0", "-n", "kubeflow"]).code == 0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let source = volume_dir(&c, "minio-data-minio-0");
    let small = (100_000.0 * scale) as usize;
    let gen_start = Instant::now();
    let bytes = generate(&source, small, 4, (150.0 * scale).max(1.0) as usize);
    println!(
        "tree: {small} small files + 4 large, {:.2} GiB, generated in {:.1}s",
        bytes as f64 / (1u64 << 30) as f64,
        gen_start.elapsed().as_secs_f64()
    );
    let size = format!("{}Mi", (bytes >> 20) * 2 + 64);
    let mut cp_secs = Vec::new();
    let mut way_secs: Vec<Vec<f64>> = WAYS.iter().map(|_| Vec::new()).collect();
    let mut ratios: Vec<Vec<f64>> = WAYS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        // Baseline: cp -a of the same tree on the same disk.
        let baseline = source.parent().expect("volumes dir").join("cp-a-baseline");
        drop_caches();
        let start = Instant::now();
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(&baseline)
            .status()
            .expect("cp");
        assert!(ok.success());
        let cp = start.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(&baseline);
        cp_secs.push(cp);
        let mut line = format!("  round {}: cp -a {cp:.2} s", round + 1);
        for (i, way) in WAYS.iter().enumerate() {
            let dest = format!("copy-{round}-{i}");
            let mut args = vec![
                "copy",
                "minio-data-minio-0",
                &dest,
                "-n",
                "kubeflow",
                "--create",
                "--size",
                &size,
                "--yes",
            ];
            args.extend(way.flags);
            drop_caches();
            let (wall, _) = run_plugin_with(&c, &args, way.env);
            // The disk is shared: each copy goes once measured.
            let _ = std::fs::remove_dir_all(volume_dir(&c, &dest));
            let secs = wall.as_secs_f64();
            way_secs[i].push(secs);
            ratios[i].push(secs / cp);
            line.push_str(&format!(", {} {:.2}", i + 1, secs / cp));
        }
        println!("{line} (ratios to cp -a, in the order below)");
    }
    println!(
        "  cp -a                                        {:>8.2} s",
        median(cp_secs)
    );
    for (i, way) in WAYS.iter().enumerate() {
        let target = way
            .target
            .map(|t| format!(" (target ≤ {t})"))
            .unwrap_or_default();
        println!(
            "  {}. {:<42} {:>8.2} s   ratio {:.2}{target}",
            i + 1,
            way.label,
            median(way_secs[i].clone()),
            median(ratios[i].clone())
        );
    }
    let rss = if rss {
        let peak = measure_rss(
            &c,
            &[
                "copy",
                "minio-data-minio-0",
                "measured",
                "-n",
                "kubeflow",
                "--create",
                "--size",
                &size,
                "--yes",
            ],
        )
        .unwrap_or(0);
        let _ = std::fs::remove_dir_all(volume_dir(&c, "measured"));
        println!(
            "  plugin peak RSS                              {:>8.1} MiB",
            peak as f64 / 1024.0
        );
        peak
    } else {
        0
    };
    (median(ratios[0].clone()), rss)
}

/// The claims of the namespace whose names start with `prefix` that are Bound, with their
/// volumes.
fn bound_claims(c: &TestCluster, prefix: &str) -> BTreeMap<String, String> {
    let list = c.get_json(&["pvc", "-n", "kubeflow"]);
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|i| i["status"]["phase"] == "Bound")
                .filter_map(|i| {
                    let name = i["metadata"]["name"].as_str()?;
                    let volume = i["spec"]["volumeName"].as_str()?;
                    name.starts_with(prefix)
                        .then(|| (name.to_string(), volume.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `n` claims `PREFIX-<i>` and waits until the binder has given each a volume.
fn make_claims(c: &TestCluster, prefix: &str, n: usize) -> BTreeMap<String, String> {
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {prefix}-{i}, namespace: kubeflow}}\nspec: {{accessModes: [ReadWriteOnce], storageClassName: standard, resources: {{requests: {{storage: 1Gi}}}}}}\n---\n"
        ));
    }
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&yaml)).ok();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let bound = bound_claims(c, &format!("{prefix}-"));
        if bound.len() == n {
            return bound;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} {prefix} claims bound",
            bound.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// How many of the adopted claims `NEW-<i>` sit on the volume `OLD-<i>` had.
fn on_their_volumes(
    c: &TestCluster,
    old: &BTreeMap<String, String>,
    old_prefix: &str,
    new_prefix: &str,
) -> usize {
    let new = bound_claims(c, &format!("{new_prefix}-"));
    old.iter()
        .filter(|(name, volume)| {
            let i = name.trim_start_matches(&format!("{old_prefix}-"));
            new.get(&format!("{new_prefix}-{i}")) == Some(*volume)
        })
        .count()
}

/// Adoptions with the volume binder at the period a real controller-manager resyncs with (the
/// process runs with `SIM_BINDER_RESYNC_MS=15000`): `n` pairs in one command, beside `singles`
/// single adoptions run one after another (when fewer than `n`, their mean × `n` is printed,
/// labelled as an extrapolation).
fn adopt_figures(n: usize, singles: usize) {
    let period = std::env::var("SIM_BINDER_RESYNC_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(1));
    println!(
        "adopting {n} claims, volume binder resync {:.0} s (a real kube-controller-manager: 15 s)",
        period.as_secs_f64()
    );
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    let many = make_claims(&c, "old", n);
    let one = make_claims(&c, "single", singles);

    // Baseline: single adoptions, one command each, one after another.
    let start = Instant::now();
    for i in 0..singles {
        run_plugin(
            &c,
            &[
                "adopt",
                &format!("single-{i}"),
                &format!("single-new-{i}"),
                "-n",
                "kubeflow",
                "--yes",
            ],
        );
    }
    let serial = start.elapsed();
    let serial_kept = on_their_volumes(&c, &one, "single", "single-new");

    // All pairs in one command.
    let pairs: Vec<String> = (0..n).map(|i| format!("old-{i}=data-new-{i}")).collect();
    let mut args: Vec<&str> = vec!["adopt"];
    args.extend(pairs.iter().map(String::as_str));
    args.extend(["-n", "kubeflow", "--yes", "--timeout", "10m"]);
    let (together, _) = run_plugin(&c, &args);
    let kept = on_their_volumes(&c, &many, "old", "data-new");
    let pods = c
        .kubectl(&[
            "get",
            "pods",
            "-n",
            "kubeflow",
            "-l",
            "app.kubernetes.io/component=migrate-pv",
            "-o",
            "name",
        ])
        .stdout;

    let mean = serial.as_secs_f64() / singles.max(1) as f64;
    let serial_n = mean * n as f64;
    if singles == n {
        println!(
            "  {n} single adoptions one after another   {:>8.2} s   (measured; {:.2} s each)",
            serial.as_secs_f64(),
            mean
        );
    } else {
        println!(
            "  {n} single adoptions one after another   {serial_n:>8.2} s   EXTRAPOLATED: {singles} measured in {:.2} s, mean {mean:.2} s × {n}",
            serial.as_secs_f64()
        );
    }
    let target = period * 2 + Duration::from_secs(10);
    println!(
        "  one command, {n} pairs                    {:>8.2} s   ratio {:.3} of the singles; target ≤ {:.0} s (2 periods + 10 s): {}",
        together.as_secs_f64(),
        together.as_secs_f64() / serial_n,
        target.as_secs_f64(),
        if together <= target { "met" } else { "MISSED" }
    );
    println!(
        "  {kept}/{n} (and {serial_kept}/{singles} single) new claims on their original volume, {} migration pods: 0 bytes copied",
        pods.lines().count()
    );
}

/// What to run: `BENCH_ONLY=copy|adopt` (or `--only copy|adopt`) runs one part.
fn only() -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != "--only").skip(1);
    args.next().or_else(|| std::env::var("BENCH_ONLY").ok())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let claims = env_usize("BENCH_ADOPT_CLAIMS", 50);
    // The simulated binder reads its period when a cluster starts: the adoption figures run in
    // a process of their own with the real period.
    if std::env::var_os("BENCH_ADOPT_PROCESS").is_some() {
        adopt_figures(
            claims,
            env_usize("BENCH_ADOPT_SINGLES", claims).clamp(1, claims),
        );
        return;
    }
    let only = only();
    if only
        .as_deref()
        .is_some_and(|o| !["copy", "adopt", "checksum"].contains(&o))
    {
        eprintln!("--only/BENCH_ONLY takes copy, checksum or adopt");
        std::process::exit(2);
    }
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    if only.as_deref() == Some("checksum") {
        println!("migrate-pv copy and checksum figures (scale {scale})");
        copy_figures(scale, rounds, false);
        return;
    }
    if only.as_deref() != Some("adopt") {
        println!("migrate-pv figures (scale {scale})");
        let (_, rss_small) = copy_figures(scale / 4.0, 1, true);
        let (_, rss_full) = copy_figures(scale, rounds, true);
        println!(
            "peak RSS at 1/4 and full size: {:.1} MiB and {:.1} MiB (target: flat, < 50 MiB)",
            rss_small as f64 / 1024.0,
            rss_full as f64 / 1024.0
        );
    }
    if only.as_deref() != Some("copy") {
        let status = Command::new(std::env::current_exe().expect("bench executable"))
            .arg("--bench")
            .env("BENCH_ADOPT_PROCESS", "1")
            .env("SIM_BINDER_RESYNC_MS", "15000")
            .status()
            .expect("the adoption figures run");
        assert!(status.success(), "the adoption figures failed");
    }
}
