//! Stand-ins for application operators, for custom resources that opt in with the annotation
//! `sim.kubectl-upgrade.dev/operator: "true"` (scenarios set it; a test that wants a stalled
//! operator leaves it out). The FoundationDB stand-in reconciles a FoundationDBCluster the way
//! the fdb-kubernetes-operator reports it: `status.runningVersion` follows `spec.version`,
//! `status.generations.reconciled` follows `metadata.generation`, and the cluster's pods run
//! the new image.

use serde_json::{Value, json};

use crate::sim::resources::builtin;
use crate::sim::store::Part;
use crate::sim::{Shared, meta};

/// The opt-in annotation.
pub const OPERATOR_ANNOTATION: &str = "sim.kubectl-upgrade.dev/operator";

/// One pass.
pub fn sync(shared: &Shared) {
    let Some(fdb) = shared
        .store
        .resolve_kind("apps.foundationdb.org/v1beta2", "FoundationDBCluster")
    else {
        return;
    };
    let pods_ri = builtin("", "pods").expect("built in");
    for cluster in shared.store.all(&fdb) {
        if cluster["metadata"]["annotations"][OPERATOR_ANNOTATION] != "true"
            || meta::deleting(&cluster)
        {
            continue;
        }
        let generation = cluster["metadata"]["generation"].clone();
        if cluster["status"]["generations"]["reconciled"] == generation {
            continue;
        }
        let version = cluster["spec"]["version"].clone();
        let (ns, name) = (meta::namespace(&cluster), meta::name(&cluster));
        if let Some(v) = version.as_str() {
            let selected = |p: &Value| {
                meta::namespace(p) == ns
                    && p["metadata"]["labels"]["foundationdb.org/fdb-cluster-name"] == name
            };
            for pod in shared.store.select(&pods_ri, selected) {
                let _ = shared
                    .store
                    .modify(&pods_ri, ns, meta::name(&pod), Part::Main, |p| {
                        let mut changed = false;
                        if let Some(cs) = p["spec"]["containers"].as_array_mut() {
                            for c in cs.iter_mut().filter(|c| c["name"] == "foundationdb") {
                                let image = c["image"].as_str().unwrap_or_default();
                                let repo = image
                                    .rsplit_once(':')
                                    .map(|(r, _)| r)
                                    .unwrap_or(image)
                                    .to_string();
                                c["image"] = json!(format!("{repo}:{v}"));
                                changed = true;
                            }
                        }
                        changed
                    });
            }
        }
        let _ = shared.store.modify(&fdb, ns, name, Part::Status, |o| {
            o["status"]["runningVersion"] = version;
            o["status"]["generations"]["reconciled"] = generation;
            true
        });
    }
}
