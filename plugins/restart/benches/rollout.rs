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
//! `BENCH_PODS=5` for a quick look. `BENCH_TRACE=1` also watches the pods during the rolling
//! restart and prints where each pod's time went, link by link (median and slowest over the
//! pods): eviction accepted → pod gone (graceful termination), gone → replacement created (the
//! StatefulSet controller), created → container running (scheduler and kubelet), running →
//! Ready (the readiness probe), Ready → the next eviction (the plugin noticing and going on).
//! Times are when the watch delivered each change.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// Pod changes as a watch delivered them, each with the time it arrived.
struct Trace {
    child: Child,
    events: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Trace {
    fn start(c: &TestCluster) -> Trace {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .args([
                "get",
                "pods",
                "-l",
                "app=bench",
                "--watch-only",
                "--output-watch-events",
                "-o",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl watch runs");
        let out = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            let stream = serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter();
            for ev in stream {
                let Ok(ev) = ev else { break };
                sink.lock().expect("trace lock").push((Instant::now(), ev));
            }
        });
        Trace { child, events }
    }

    /// Stops the watch; each link's median and slowest time over the pods of `old` (name, uid
    /// before the restart); `start` and `end` bound the run.
    fn report(mut self, old: &[(String, String)], start: Instant, end: Instant) -> String {
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let events = self.events.lock().expect("trace lock").clone();
        let first = |f: &dyn Fn(&str, &Value) -> bool| {
            events
                .iter()
                .find(|(_, e)| f(e["type"].as_str().unwrap_or_default(), &e["object"]))
                .map(|(t, _)| *t)
        };
        let name = |o: &Value| {
            o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let uid = |o: &Value| {
            o["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let mut links: Vec<(&str, Vec<Duration>)> = [
            "plugin start → first eviction",
            "eviction → pod gone (graceful termination)",
            "gone → replacement created (StatefulSet controller)",
            "created → container running (scheduler, kubelet)",
            "running → Ready (readiness probe)",
            "Ready → next eviction (the plugin)",
            "last Ready → plugin exit",
        ]
        .into_iter()
        .map(|l| (l, Vec::new()))
        .collect();
        let mut pods = Vec::new();
        for (n, u) in old {
            let evicted = first(&|_, o| {
                name(o) == *n && uid(o) == *u && !o["metadata"]["deletionTimestamp"].is_null()
            });
            let gone = first(&|t, o| t == "DELETED" && uid(o) == *u);
            let created = first(&|_, o| name(o) == *n && uid(o) != *u);
            let running = first(&|_, o| {
                name(o) == *n
                    && uid(o) != *u
                    && o["status"]["containerStatuses"][0]["state"]["running"].is_object()
            });
            let ready = first(&|_, o| {
                name(o) == *n
                    && uid(o) != *u
                    && o["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            });
            match (evicted, gone, created, running, ready) {
                (Some(e), Some(g), Some(c), Some(r), Some(y)) => pods.push([e, g, c, r, y]),
                _ => return format!("  trace: pod/{n} is missing a step\n"),
            }
        }
        // In the order the plugin evicted them.
        pods.sort();
        let mut last_ready = None;
        for [evicted, gone, created, running, ready] in pods {
            match last_ready {
                None => links[0].1.push(evicted.saturating_duration_since(start)),
                Some(r) => links[5].1.push(evicted.saturating_duration_since(r)),
            }
            links[1].1.push(gone.saturating_duration_since(evicted));
            links[2].1.push(created.saturating_duration_since(gone));
            links[3].1.push(running.saturating_duration_since(created));
            links[4].1.push(ready.saturating_duration_since(running));
            last_ready = Some(ready);
        }
        if let Some(r) = last_ready {
            links[6].1.push(end.saturating_duration_since(r));
        }
        let mut out = String::from("  rolling: where each pod's time went (median / slowest)\n");
        for (what, mut ds) in links {
            ds.sort();
            if let (Some(mid), Some(max)) = (ds.get(ds.len() / 2), ds.last()) {
                out.push_str(&format!(
                    "    {what:<55} {:>6.3}s / {:>6.3}s\n",
                    mid.as_secs_f64(),
                    max.as_secs_f64()
                ));
            }
        }
        out
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
    let traced = std::env::var_os("BENCH_TRACE").is_some();
    let old: Vec<(String, String)> = (0..pods)
        .rev()
        .map(|i| {
            let name = format!("bench-{i}");
            let uid = c.jsonpath(&["pod", &name], "{.metadata.uid}");
            (name, uid)
        })
        .collect();
    let trace = traced.then(|| Trace::start(&c));
    // The watch is established before the run starts.
    if traced {
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
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
    let timeline = trace.map(|t| t.report(&old, started, Instant::now()));
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
    if let Some(t) = timeline {
        print!("{t}");
    }
}
