//! A live `kubectl upgrade-check` on a large cluster beside `kubectl get pods,pvc,pv,deploy,sts
//! -A -o json` on the same simulated cluster: 10,000 pods, 5,000 claims and volumes, 1,000
//! workloads, plus a KubeFATE v1.8.0 install to check. Target: the check is not slower than that
//! kubectl call (it lists the namespace's objects and the volumes, page by page, and never gets
//! objects one by one). Prints figures; run with
//! `cargo build --release -p kubectl-upgrade-check && cargo bench -p upgrade-e2e --bench live_check`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;
use upgrade_e2e::load::{CLAIMS, NAMESPACES, PODS, WORKLOADS, seed};

const RUNS: usize = 5;

fn check_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("kubectl-upgrade-check");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p kubectl-upgrade-check first",
        bin.display()
    );
    bin
}

fn time(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("runs");
    let d = start.elapsed();
    assert!(status.code().is_some_and(|c| c <= 1), "{cmd:?}: {status}");
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let c = TestCluster::start(&["fate-1.8.0-storage-class.yaml"]).expect("cluster");
    let start = Instant::now();
    seed(&c);
    println!(
        "seeded {PODS} pods, {CLAIMS} claims and volumes, {WORKLOADS} workloads in {NAMESPACES} namespaces in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let check = check_binary();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        ours.push(time(
            Command::new(&check)
                .arg("--kubeconfig")
                .arg(&c.kubeconfig)
                .args([
                    "--profile",
                    "fate",
                    "-n",
                    "fate-9999",
                    "--to",
                    "v1.9.0",
                    "-o",
                    "json",
                ]),
        ));
        theirs.push(time(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&c.kubeconfig)
                .args(["get", "pods,pvc,pv,deploy,sts", "-A", "-o", "json"]),
        ));
    }
    let (a, b) = (median(ours), median(theirs));
    println!("live check on a large cluster, {RUNS} runs interleaved (medians)");
    println!(
        "  kubectl upgrade-check --profile fate -n fate-9999     {:>8.1} ms",
        a.as_secs_f64() * 1e3
    );
    println!(
        "  kubectl get pods,pvc,pv,deploy,sts -A -o json         {:>8.1} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "  ratio check / kubectl get   {:.3}  (target ≤ 1: {})",
        a.as_secs_f64() / b.as_secs_f64(),
        if a <= b { "met" } else { "NOT met" }
    );
}
