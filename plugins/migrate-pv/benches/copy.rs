//! Figures for `kubectl upgrade-migrate-pv` on the simulated cluster, printed side by side with
//! a baseline run on the same disk:
//! - copy wall time of a generated tree (≈1 GiB: 100,000 small files and a few large ones)
//!   divided by `cp -a` of the same tree (target ≤ 1.3);
//! - verification time with and without checksums (runs of the same copy);
//! - the plugin's peak resident memory at two data sizes (target: flat, under 50 MiB);
//! - adopting 50 claims: total time, and zero bytes copied.
//!
//! `BENCH_SCALE=0.1` makes the tree ten times smaller for a quick look.

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
    let start = Instant::now();
    let out = Command::new(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
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

fn copy_figures(scale: f64) -> (f64, u64) {
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
    let cp = start.elapsed();
    let _ = std::fs::remove_dir_all(&baseline);

    drop_caches();
    let size = format!("{}Mi", (bytes >> 20) * 2 + 64);
    let (copy, _) = run_plugin(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "plain",
            "-n",
            "kubeflow",
            "--create",
            "--size",
            &size,
            "--yes",
        ],
    );
    drop_caches();
    let (copy_sum, _) = run_plugin(
        &c,
        &[
            "copy",
            "minio-data-minio-0",
            "summed",
            "-n",
            "kubeflow",
            "--create",
            "--size",
            &size,
            "--verify=checksum",
            "--yes",
        ],
    );
    let rss = measure_rss(
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
    println!(
        "  cp -a                              {:>8.2} s",
        cp.as_secs_f64()
    );
    println!(
        "  migrate-pv copy (+ manifest check)  {:>8.2} s   ratio {:.2} (target ≤ 1.3)",
        copy.as_secs_f64(),
        copy.as_secs_f64() / cp.as_secs_f64()
    );
    println!(
        "  migrate-pv copy (+ checksums)       {:>8.2} s   checksum pass adds {:.2} s",
        copy_sum.as_secs_f64(),
        copy_sum.as_secs_f64() - copy.as_secs_f64()
    );
    println!(
        "  plugin peak RSS                     {:>8.1} MiB",
        rss as f64 / 1024.0
    );
    (copy.as_secs_f64() / cp.as_secs_f64(), rss)
}

fn adopt_figures(n: usize) {
    let c = TestCluster::start(&["kubeflow-minio.yaml"]).expect("cluster");
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: old-{i}, namespace: kubeflow}}\nspec: {{accessModes: [ReadWriteOnce], storageClassName: standard, resources: {{requests: {{storage: 1Gi}}}}}}\n---\n"
        ));
    }
    c.kubectl_stdin(&["apply", "-f", "-"], Some(&yaml)).ok();
    for i in 0..n {
        while c
            .kubectl(&[
                "get",
                "pvc",
                &format!("old-{i}"),
                "-n",
                "kubeflow",
                "-o",
                "jsonpath={.status.phase}",
            ])
            .stdout
            != "Bound"
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let volumes: Vec<String> = (0..n)
        .map(|i| {
            c.kubectl(&[
                "get",
                "pvc",
                &format!("old-{i}"),
                "-n",
                "kubeflow",
                "-o",
                "jsonpath={.spec.volumeName}",
            ])
            .stdout
        })
        .collect();
    let start = Instant::now();
    for i in 0..n {
        run_plugin(
            &c,
            &[
                "adopt",
                &format!("old-{i}"),
                &format!("data-new-{i}"),
                "-n",
                "kubeflow",
                "--yes",
            ],
        );
    }
    let total = start.elapsed();
    let same = (0..n)
        .filter(|i| {
            c.kubectl(&[
                "get",
                "pvc",
                &format!("data-new-{i}"),
                "-n",
                "kubeflow",
                "-o",
                "jsonpath={.spec.volumeName}",
            ])
            .stdout
                == volumes[*i]
        })
        .count();
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
    println!(
        "adopt of {n} claims: {:.2} s total, {:.0} ms each; {same}/{n} new claims on their original volume, {} migration pods: 0 bytes copied",
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n as f64,
        pods.lines().count()
    );
}

fn main() {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("migrate-pv figures (scale {scale})");
    let (_, rss_small) = copy_figures(scale / 4.0);
    let (_, rss_full) = copy_figures(scale);
    println!(
        "peak RSS at 1/4 and full size: {:.1} MiB and {:.1} MiB (target: flat, < 50 MiB)",
        rss_small as f64 / 1024.0,
        rss_full as f64 / 1024.0
    );
    adopt_figures(50);
}
