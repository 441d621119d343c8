//! Restart speed on the simulated cluster, against the time the pods themselves need.
//!
//! 20 StatefulSet pods (`podManagementPolicy: Parallel`) whose readiness probe passes 1 s after
//! the container starts (`initialDelaySeconds: 1`):
//! - rolling, one at a time through the eviction API: wall ÷ (20 × 1 s), target ≤ 1.3; beside
//!   it `kubectl rollout restart` + `kubectl rollout status` of the same StatefulSet (the
//!   controller's own one-at-a-time restart);
//! - all at once: wall ÷ one pod's time to Ready (delete one pod, wait for its replacement to be
//!   Ready, measured the same way), target ≤ 2.
//!
//! On a busy machine a pod takes longer than its 1 s to be Ready, so the rolling figure is also
//! given against 20 × the measured time of one pod.
//!
//! `BENCH_PODS=5` for a quick look.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use upgrade_e2e::harness::TestCluster;

fn plugin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-upgrade-restart"))
}

fn statefulset(pods: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: bench, namespace: default}}
spec:
  replicas: {pods}
  serviceName: bench
  podManagementPolicy: Parallel
  selector: {{matchLabels: {{app: bench}}}}
  template:
    metadata: {{labels: {{app: bench}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sleep", "infinity"]
        readinessProbe:
          exec: {{command: ["true"]}}
          initialDelaySeconds: 1
          periodSeconds: 1
"#
    )
}

fn ready_count(c: &TestCluster) -> usize {
    let pods = c.get_json(&["pods", "-l", "app=bench"]);
    pods["items"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter(|p| {
                    p["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

fn wait_all_ready(c: &TestCluster, pods: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready_count(c) < pods {
        assert!(Instant::now() < deadline, "pods did not become Ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(c: &TestCluster, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(plugin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .output()
        .expect("plugin runs");
    let wall = start.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

/// One pod's time to Ready: delete it and wait for the replacement, polled like the plugin.
fn one_pod(c: &TestCluster) -> Duration {
    let uid = c.jsonpath(&["pod", "bench-0"], "{.metadata.uid}");
    let start = Instant::now();
    c.kubectl(&["delete", "pod", "bench-0", "--wait=false"])
        .ok();
    loop {
        let now = c.jsonpath(
            &["pod", "bench-0"],
            "{.metadata.uid} {.status.conditions[?(@.type==\"Ready\")].status}",
        );
        if !now.starts_with(&uid) && now.ends_with("True") {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let c = TestCluster::start(&[]).expect("cluster");
    c.apply(&statefulset(pods));
    wait_all_ready(&c, pods);

    let ideal = Duration::from_secs(pods as u64);
    let rolling = run(
        &c,
        &[
            "pods",
            "-n",
            "default",
            "-l",
            "app=bench",
            "--yes",
            "--timeout",
            "120s",
        ],
    );
    wait_all_ready(&c, pods);

    let start = Instant::now();
    c.kubectl(&["rollout", "restart", "sts/bench"]).ok();
    c.kubectl(&["rollout", "status", "sts/bench", "--timeout=300s"])
        .ok();
    wait_all_ready(&c, pods);
    let kubectl = start.elapsed();

    let single: Vec<Duration> = (0..3)
        .map(|_| {
            let d = one_pod(&c);
            wait_all_ready(&c, pods);
            d
        })
        .collect();
    let single = single.iter().sum::<Duration>() / single.len() as u32;
    let all = run(
        &c,
        &[
            "pods",
            "-n",
            "default",
            "-l",
            "app=bench",
            "--mode",
            "all-at-once",
            "--yes",
            "--timeout",
            "120s",
        ],
    );

    let s = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    println!("restart benchmark: {pods} pods, readiness 1 s after start");
    println!(
        "  rolling (eviction, 1 at a time)   {:>8}   ÷ {pods} × 1 s = {:.2} (target ≤ 1.30)",
        s(rolling),
        rolling.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "  rolling ÷ ({pods} × one pod to Ready, {})            = {:.2} (the cluster's own pace)",
        s(single),
        rolling.as_secs_f64() / (single.as_secs_f64() * pods as f64)
    );
    println!(
        "  kubectl rollout restart + status  {:>8}   rolling ÷ kubectl = {:.2}",
        s(kubectl),
        rolling.as_secs_f64() / kubectl.as_secs_f64()
    );
    println!(
        "  all at once                       {:>8}   ÷ one pod to Ready ({}) = {:.2} (target ≤ 2.00)",
        s(all),
        s(single),
        all.as_secs_f64() / single.as_secs_f64()
    );
}
