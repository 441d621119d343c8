//! The large cluster the live benchmarks run on: 10,000 pods, 5,000 claims and volumes and
//! 1,000 workloads spread over 50 namespaces, written straight into the store (no processes
//! run for them), beside whatever scenario the cluster started with.

use serde_json::json;

use crate::harness::TestCluster;
use crate::sim::resources::builtin;

/// Pods, on nodes other than the simulated one.
pub const PODS: usize = 10_000;
/// Claims, each pre-bound to its own volume.
pub const CLAIMS: usize = 5_000;
/// Deployments and StatefulSets, half each, at zero replicas.
pub const WORKLOADS: usize = 1_000;
/// Namespaces `load-0` … `load-49`.
pub const NAMESPACES: usize = 50;

/// Writes the load into the cluster's store.
pub fn seed(c: &TestCluster) {
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
