//! A live `kubectl upgrade-check` on a large cluster beside `kubectl get pods,pvc,pv,deploy,sts
//! -A -o json` on the same simulated cluster: 10,000 pods, 5,000 claims and volumes, 1,000
//! workloads, plus a KubeFATE v1.8.0 install to check. Target: the check is not slower than that
//! kubectl call (it lists the namespace's objects and the volumes, page by page, and never gets
//! objects one by one). Prints figures; run with
//! `cargo build --release -p kubectl-upgrade-check && cargo bench -p upgrade-e2e --bench live_check`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use upgrade_e2e::harness::TestCluster;
use upgrade_e2e::sim::resources::builtin;

const PODS: usize = 10_000;
const CLAIMS: usize = 5_000;
const WORKLOADS: usize = 1_000;
const NAMESPACES: usize = 50;
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

fn seed(c: &TestCluster) {
    let store = c.guard.store();
    let (ns_ri, pod_ri, pvc_ri, pv_ri) = (
        builtin("", "namespaces").expect("namespaces"),
        builtin("", "pods").expect("pods"),
        builtin("", "persistentvolumeclaims").expect("claims"),
        builtin("", "persistentvolumes").expect("volumes"),
    );
    let (deploy_ri, sts_ri) = (
        builtin("apps", "deployments").expect("deployments"),
        builtin("apps", "statefulsets").expect("statefulsets"),
    );
    for n in 0..NAMESPACES {
        store
            .create(
                &ns_ri,
                "",
                json!({"metadata": {"name": format!("load-{n}")}}),
                false,
            )
            .expect("namespace");
    }
    for i in 0..PODS {
        let ns = format!("load-{}", i % NAMESPACES);
        // Pods of another node: listed like any pod, but no process runs for them here.
        let pod = json!({
            "metadata": {"name": format!("pod-{i}"), "namespace": ns, "labels": {"app": format!("app-{}", i % WORKLOADS)}},
            "spec": {"nodeName": format!("load-node-{}", i % 20), "containers": [{"name": "app", "image": "busybox:1.36"}]},
            "status": {"phase": "Running"}
        });
        store.create(&pod_ri, &ns, pod, false).expect("pod");
    }
    for i in 0..CLAIMS {
        let ns = format!("load-{}", i % NAMESPACES);
        let pv = json!({
            "metadata": {"name": format!("load-pv-{i}")},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "load", "persistentVolumeReclaimPolicy": "Retain",
                     "nfs": {"server": "nfs.example", "path": format!("/export/{i}")}, "claimRef": {"namespace": ns, "name": format!("claim-{i}")}}
        });
        store.create(&pv_ri, "", pv, false).expect("pv");
        let pvc = json!({
            "metadata": {"name": format!("claim-{i}"), "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "load", "volumeName": format!("load-pv-{i}"), "resources": {"requests": {"storage": "1Gi"}}}
        });
        store.create(&pvc_ri, &ns, pvc, false).expect("pvc");
    }
    for i in 0..WORKLOADS {
        let ns = format!("load-{}", i % NAMESPACES);
        let labels = json!({"app": format!("app-{i}")});
        let template = json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}});
        // Zero replicas: the objects are listed, no controller starts pods for them.
        let spec = json!({"replicas": 0, "selector": {"matchLabels": labels}, "template": template, "serviceName": "svc"});
        let (ri, kind) = if i % 2 == 0 {
            (&deploy_ri, "Deployment")
        } else {
            (&sts_ri, "StatefulSet")
        };
        store.create(ri, &ns, json!({"kind": kind, "metadata": {"name": format!("w-{i}"), "namespace": ns}, "spec": spec}), false).expect("workload");
    }
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
