//! `record` + `verify` of a KubeFATE v1.8.0 namespace on a large cluster (the live-check
//! benchmark's: 10,000 pods, 5,000 claims and volumes, 1,000 workloads) beside `kubectl get
//! pods,pvc,pv,deploy,sts -A -o json` on the same simulated cluster. Target: record + verify
//! ≤ 0.5 of that kubectl call (both read only the namespace, page by page, and the volumes
//! behind its claims by name). Volume summaries are not part of it. Prints figures and the
//! plugin's peak RSS; run with `cargo bench -p kubectl-upgrade-verify`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;
use upgrade_e2e::load::{CLAIMS, NAMESPACES, PODS, WORKLOADS, seed};

const RUNS: usize = 5;
const BIN: &str = env!("CARGO_BIN_EXE_kubectl-upgrade-verify");

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    let d = start.elapsed();
    // 1 is a verification with differences: the same reads, a different answer.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{cmd:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn plugin(c: &TestCluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--kubeconfig").arg(&c.kubeconfig).args(args);
    cmd
}

/// Peak RSS of one plugin run in KiB, measured with GNU time's `%M`.
fn peak_rss(c: &TestCluster, args: &[&str]) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let out = Command::new(time)
        .args(["-f", "%M", BIN, "--kubeconfig"])
        .arg(&c.kubeconfig)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("time runs");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
}

fn main() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let start = Instant::now();
    seed(&c);
    println!(
        "seeded {PODS} pods, {CLAIMS} claims and volumes, {WORKLOADS} workloads in {NAMESPACES} namespaces in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let record = [
        "record",
        "-n",
        "fate-9999",
        "--profile",
        "fate",
        "--yes",
        "-o",
        "json",
    ];
    let verify = ["verify", "-n", "fate-9999", "-o", "json"];
    // A first run of each, so the figures are of warm runs like kubectl's.
    time(&mut plugin(&c, &record));
    time(&mut plugin(&c, &verify));
    let (mut records, mut verifies, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        records.push(time(&mut plugin(&c, &record)));
        verifies.push(time(&mut plugin(&c, &verify)));
        theirs.push(time(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&c.kubeconfig)
                .args(["get", "pods,pvc,pv,deploy,sts", "-A", "-o", "json"]),
        ));
    }
    let (r, v, k) = (median(records), median(verifies), median(theirs));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("record + verify on a large cluster, {RUNS} runs interleaved (medians)");
    println!(
        "  kubectl upgrade-verify record -n fate-9999 --profile fate   {:>8.1} ms",
        ms(r)
    );
    println!(
        "  kubectl upgrade-verify verify -n fate-9999                  {:>8.1} ms",
        ms(v)
    );
    println!(
        "  kubectl get pods,pvc,pv,deploy,sts -A -o json               {:>8.1} ms",
        ms(k)
    );
    let ratio = (r + v).as_secs_f64() / k.as_secs_f64();
    println!(
        "  ratio (record + verify) / kubectl get   {ratio:.3}  (target ≤ 0.5: {})",
        if ratio <= 0.5 { "met" } else { "NOT met" }
    );
    for (what, args) in [("record", &record[..]), ("verify", &verify[..])] {
        match peak_rss(&c, args) {
            Some(kib) => println!("  peak RSS of {what}   {:>6.1} MiB", kib as f64 / 1024.0),
            None => println!("  peak RSS of {what}: /usr/bin/time is not installed"),
        }
    }
}
