//! A stand-in for the Rok operator, for RokClusters annotated
//! `sim.kubectl-upgrade.dev/operator: "true"`. It upgrades the cluster the way Rok's upgrade
//! guide describes: once the RokCluster asks for a version (`spec.image`'s tag) that its
//! `status.version` does not report, and an operator pod of that same version runs and is ready
//! (the guide upgrades the operator last, and a scaled-down operator does nothing), it reports
//! phase `Upgrading`, runs the Job `rok-upgrade-<generation>` in the cluster's namespace (the
//! guide's "Kubernetes Job … to upgrade the cluster config on etcd and run any needed
//! migrations"), and when the Job completes reports the new version with health `OK` and phase
//! `Running`. A failed Job leaves the cluster `Upgrading` with health `Failed`.

use serde_json::{Value, json};

use super::operators::OPERATOR_ANNOTATION;
use crate::sim::resources::builtin;
use crate::sim::store::Part;
use crate::sim::{Shared, meta};

/// The label the Rok operator's pods carry, and the namespace it runs in.
const OPERATOR_SELECTOR: (&str, &str) = ("app", "rok-operator");

fn tag(image: &str) -> Option<&str> {
    let last = image.rsplit('/').next()?;
    last.rsplit_once(':').map(|(_, t)| t)
}

fn job_state(job: &Value) -> Option<&'static str> {
    let cs = job["status"]["conditions"].as_array()?;
    let on = |t: &str| cs.iter().any(|c| c["type"] == t && c["status"] == "True");
    if on("Complete") {
        Some("Complete")
    } else if on("Failed") {
        Some("Failed")
    } else {
        None
    }
}

/// One pass.
pub fn sync(shared: &Shared) {
    let Some(rok) = shared
        .store
        .resolve_kind("crd.arrikto.com/v1", "RokCluster")
    else {
        return;
    };
    let pods_ri = builtin("", "pods").expect("built in");
    let jobs_ri = builtin("batch", "jobs").expect("built in");
    for cluster in shared.store.all(&rok) {
        if cluster["metadata"]["annotations"][OPERATOR_ANNOTATION] != "true"
            || meta::deleting(&cluster)
        {
            continue;
        }
        let Some(want) = cluster["spec"]["image"].as_str().and_then(tag) else {
            continue;
        };
        if cluster["status"]["version"] == want {
            continue;
        }
        let operator_ready = shared
            .store
            .select(&pods_ri, |p| {
                p["metadata"]["labels"][OPERATOR_SELECTOR.0] == OPERATOR_SELECTOR.1
                    && !meta::deleting(p)
                    && super::pod_ready(p)
            })
            .iter()
            .any(|p| {
                p["spec"]["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["image"].as_str().and_then(tag) == Some(want))
            });
        if !operator_ready {
            continue;
        }
        let (ns, name) = (meta::namespace(&cluster), meta::name(&cluster));
        let generation = cluster["metadata"]["generation"].as_i64().unwrap_or(1);
        let job_name = format!("rok-upgrade-{generation}");
        let job = match shared.store.get(&jobs_ri, ns, &job_name) {
            Ok(j) => j,
            Err(_) => {
                let image = cluster["spec"]["image"].as_str().unwrap_or_default();
                let body = json!({
                    "metadata": {
                        "name": job_name,
                        "namespace": ns,
                        "labels": {"app": "rok-upgrade", "rok-cluster": name},
                    },
                    "spec": {
                        "backoffLimit": 0,
                        "template": {
                            "metadata": {"labels": {"app": "rok-upgrade"}},
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{
                                    "name": "upgrade",
                                    "image": image,
                                    "command": ["sh", "-c", format!("echo upgrading the cluster configuration on etcd to {want}; echo migrations done")],
                                }],
                            },
                        },
                    },
                });
                let _ = shared.store.create(&jobs_ri, ns, body, false);
                let _ = shared.store.modify(&rok, ns, name, Part::Status, |o| {
                    o["status"]["phase"] = json!("Upgrading");
                    o["status"]["health"] = json!("Upgrading");
                    o["status"]["message"] =
                        json!(format!("Upgrading to {want} with Job {job_name}"));
                    true
                });
                continue;
            }
        };
        match job_state(&job) {
            Some("Complete") => {
                let _ = shared.store.modify(&rok, ns, name, Part::Status, |o| {
                    o["status"]["version"] = json!(want);
                    o["status"]["phase"] = json!("Running");
                    o["status"]["health"] = json!("OK");
                    o["status"]["message"] = json!("All components are healthy");
                    true
                });
            }
            Some(_) => {
                let _ = shared.store.modify(&rok, ns, name, Part::Status, |o| {
                    let changed = o["status"]["health"] != "Failed";
                    o["status"]["health"] = json!("Failed");
                    o["status"]["message"] = json!(format!("Job {job_name} failed"));
                    changed
                });
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_come_from_the_last_path_element() {
        assert_eq!(tag("gcr.io/arrikto/roke:v2.0.1"), Some("v2.0.1"));
        assert_eq!(tag("localhost:5000/roke"), None);
        assert_eq!(tag("roke:v1.5.3"), Some("v1.5.3"));
    }
}
