//! Offline check speed beside `kubectl version --client`, run side by side and interleaved so
//! both see the same machine. Prints figures; the target is a ratio below 1 (the check is
//! faster than the smallest kubectl command).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 40;

fn time(mut cmd: Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("command starts");
    let elapsed = start.elapsed();
    assert!(
        status.code().is_some_and(|c| c <= 1),
        "{cmd:?} failed: {status}"
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let check = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kubectl-upgrade-check"));
        c.args([
            "--profile",
            "fate",
            "--from-file",
            "examples/fate/cluster.yaml",
            "--to",
            "v1.9.0",
            "-o",
            "json",
        ])
        .current_dir(&repo);
        c
    };
    let kubectl = || {
        let mut c = Command::new("kubectl");
        c.args(["version", "--client"]);
        c
    };
    // Warm the page cache for both binaries.
    time(check());
    time(kubectl());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(time(check()));
        theirs.push(time(kubectl()));
    }
    let (a, b) = (median(ours), median(theirs));
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    println!("offline check (fate v1.8.0 → v1.9.0, -o json), {RUNS} runs interleaved");
    println!(
        "  kubectl upgrade-check        median {:>8.2} ms",
        a.as_secs_f64() * 1e3
    );
    println!(
        "  kubectl version --client     median {:>8.2} ms",
        b.as_secs_f64() * 1e3
    );
    println!(
        "  ratio check / kubectl        {ratio:.3}  (target < 1: {})",
        if ratio < 1.0 { "met" } else { "NOT met" }
    );
}
