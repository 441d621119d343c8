//! The persistent volume controller (pkg/controller/volume/persistentvolume/pv_controller.go):
//! binding claims to volumes by class, capacity, access modes, volume mode, selector,
//! `spec.volumeName` and pre-bound `claimRef`s; `Released` volumes that keep their claimRef;
//! reclaiming with `Retain` or `Delete`; dynamic provisioning from StorageClasses (a directory
//! under the data dir, named `pvc-<claim uid>`) including `WaitForFirstConsumer`; and the
//! pvc/pv-protection finalizers (pkg/controller/volume/pvcprotection, pvprotection).

use serde_json::{Value, json};

use crate::sim::resources::{ResourceInfo, builtin};
use crate::sim::selectors::LabelSelector;
use crate::sim::store::{DeleteOptions, Part};
use crate::sim::{Shared, meta};

/// Annotation the scheduler sets on claims of `WaitForFirstConsumer` classes.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

struct Kinds {
    pvc: ResourceInfo,
    pv: ResourceInfo,
    sc: ResourceInfo,
    pods: ResourceInfo,
}

fn kinds() -> Kinds {
    let b = |g, p| builtin(g, p).expect("built in");
    Kinds {
        pvc: b("", "persistentvolumeclaims"),
        pv: b("", "persistentvolumes"),
        sc: b("storage.k8s.io", "storageclasses"),
        pods: b("", "pods"),
    }
}

fn class_of_claim(claim: &Value) -> String {
    claim["spec"]["storageClassName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn modes(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a volume satisfies a claim (`checkVolumeSatisfyClaim` plus the selector).
pub fn satisfies(pv: &Value, claim: &Value) -> bool {
    let pv_class = pv["spec"]["storageClassName"].as_str().unwrap_or_default();
    let want = meta::quantity(&claim["spec"]["resources"]["requests"]["storage"]);
    let have = meta::quantity(&pv["spec"]["capacity"]["storage"]);
    let pv_modes = modes(&pv["spec"]["accessModes"]);
    let mode = |v: &Value| v.as_str().unwrap_or("Filesystem").to_string();
    let selector_ok = match LabelSelector::from_object(&claim["spec"]["selector"]) {
        Some(s) => s.matches(&pv["metadata"]["labels"]),
        None => true,
    };
    pv_class == class_of_claim(claim)
        && have >= want
        && modes(&claim["spec"]["accessModes"])
            .iter()
            .all(|m| pv_modes.contains(m))
        && mode(&pv["spec"]["volumeMode"]) == mode(&claim["spec"]["volumeMode"])
        && selector_ok
        && !meta::deleting(pv)
}

fn claim_ref_matches(pv: &Value, claim: &Value) -> bool {
    let r = &pv["spec"]["claimRef"];
    r["name"].as_str() == Some(meta::name(claim))
        && r["namespace"].as_str() == Some(meta::namespace(claim))
        && r["uid"]
            .as_str()
            .is_none_or(|u| u.is_empty() || u == meta::uid(claim))
}

/// Where a volume's data lives on this machine: its hostPath or local path, else (NFS, CSI and
/// other remote sources) a directory of its own under `<data dir>/volumes/<name>`.
pub fn volume_path(data_dir: &std::path::Path, pv: &Value) -> Option<std::path::PathBuf> {
    let local = pv["spec"]["hostPath"]["path"]
        .as_str()
        .or(pv["spec"]["local"]["path"].as_str());
    match local {
        Some(p) => Some(std::path::PathBuf::from(p)),
        None if !meta::name(pv).is_empty() => Some(data_dir.join("volumes").join(meta::name(pv))),
        None => None,
    }
}

/// One binder pass over every claim and volume.
pub fn sync(shared: &Shared) {
    let k = kinds();
    let classes = shared.store.all(&k.sc);
    for claim in shared.store.all(&k.pvc) {
        if !meta::deleting(&claim) {
            sync_claim(shared, &k, &classes, &claim);
        }
    }
    for pv in shared.store.all(&k.pv) {
        sync_volume(shared, &k, &pv);
    }
}

/// The claim and volume protection controllers: a claim being deleted loses
/// `kubernetes.io/pvc-protection` once no pod uses it, a volume being deleted loses
/// `kubernetes.io/pv-protection` once it is not Bound. Unlike the binder they have no resync of
/// their own: kube-controller-manager's pvc-protection and pv-protection controllers act on
/// informer events (a claim or volume updated, a pod deleted), so they run on every change.
pub fn protection(shared: &Shared) {
    protect(shared, &kinds());
}

fn bind(shared: &Shared, k: &Kinds, pv: &Value, claim: &Value, by_controller: bool) {
    let (ns, name) = (
        meta::namespace(claim).to_string(),
        meta::name(claim).to_string(),
    );
    let claim_ref = json!({"kind": "PersistentVolumeClaim", "namespace": ns, "name": name, "uid": meta::uid(claim), "apiVersion": "v1", "resourceVersion": claim["metadata"]["resourceVersion"]});
    let pv_name = meta::name(pv).to_string();
    let _ = shared.store.modify(&k.pv, "", &pv_name, Part::Main, |p| {
        if p["spec"]["claimRef"]["uid"].as_str() == Some(meta::uid(claim)) {
            return false;
        }
        p["spec"]["claimRef"] = claim_ref;
        p["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        true
    });
    let _ = shared.store.modify(&k.pv, "", &pv_name, Part::Status, |p| {
        let changed = p["status"]["phase"] != "Bound";
        p["status"] = json!({"phase": "Bound", "lastPhaseTransitionTime": meta::now()});
        changed
    });
    let _ = shared.store.modify(&k.pvc, &ns, &name, Part::Main, |c| {
        let before = c.clone();
        c["spec"]["volumeName"] = json!(pv_name);
        c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
        if by_controller {
            c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
        *c != before
    });
    let capacity = pv["spec"]["capacity"].clone();
    let access = pv["spec"]["accessModes"].clone();
    let _ = shared.store.modify(&k.pvc, &ns, &name, Part::Status, |c| {
        let status = json!({"phase": "Bound", "capacity": capacity, "accessModes": access});
        let changed = c["status"] != status;
        c["status"] = status;
        changed
    });
}

fn set_claim_phase(shared: &Shared, k: &Kinds, claim: &Value, phase: &str) {
    let _ = shared.store.modify(
        &k.pvc,
        meta::namespace(claim),
        meta::name(claim),
        Part::Status,
        |c| {
            let changed = c["status"]["phase"] != phase;
            c["status"]["phase"] = json!(phase);
            changed
        },
    );
}

/// Volume expansion (the external resizer and the kubelet's filesystem resize in one step): a
/// bound claim asking for more than its capacity grows its volume and its status.
fn expand(shared: &Shared, k: &Kinds, claim: &Value) {
    let want = &claim["spec"]["resources"]["requests"]["storage"];
    if claim["status"]["phase"] != "Bound"
        || meta::quantity(want) <= meta::quantity(&claim["status"]["capacity"]["storage"])
    {
        return;
    }
    let Some(pv_name) = claim["spec"]["volumeName"].as_str() else {
        return;
    };
    let size = want.clone();
    let _ = shared.store.modify(&k.pv, "", pv_name, Part::Main, |p| {
        p["spec"]["capacity"]["storage"] = size.clone();
        true
    });
    let _ = shared.store.modify(
        &k.pvc,
        meta::namespace(claim),
        meta::name(claim),
        Part::Status,
        |c| {
            c["status"]["capacity"]["storage"] = size;
            true
        },
    );
    super::events::record(
        shared,
        claim,
        false,
        "VolumeResizeSuccessful",
        "MountVolume.NodeExpandVolume succeeded",
        "kubelet",
    );
}

fn sync_claim(shared: &Shared, k: &Kinds, classes: &[Value], claim: &Value) {
    expand(shared, k, claim);
    let volume_name = claim["spec"]["volumeName"].as_str().unwrap_or_default();
    if !volume_name.is_empty() {
        match shared.store.get(&k.pv, "", volume_name) {
            Err(_) => set_claim_phase(
                shared,
                k,
                claim,
                if claim["status"]["phase"] == "Bound" {
                    "Lost"
                } else {
                    "Pending"
                },
            ),
            Ok(pv) => {
                let free = pv["spec"]["claimRef"].is_null();
                if (free && satisfies(&pv, claim)) || claim_ref_matches(&pv, claim) {
                    bind(shared, k, &pv, claim, false);
                } else {
                    // Bound to a different claim (or an old claim's uid): wait.
                    set_claim_phase(shared, k, claim, "Pending");
                }
            }
        }
        return;
    }
    let class_name = class_of_claim(claim);
    let class = classes.iter().find(|c| meta::name(c) == class_name);
    let delay = class.is_some_and(|c| c["volumeBindingMode"] == "WaitForFirstConsumer");
    let selected = claim["metadata"]["annotations"][SELECTED_NODE].is_string();
    let pvs = shared.store.all(&k.pv);
    let prebound = pvs
        .iter()
        .find(|pv| claim_ref_matches(pv, claim) && !meta::deleting(pv));
    let candidate = prebound.or_else(|| {
        if delay && !selected {
            return None;
        }
        pvs.iter()
            .filter(|pv| pv["spec"]["claimRef"].is_null() && satisfies(pv, claim))
            .min_by(|a, b| {
                meta::quantity(&a["spec"]["capacity"]["storage"])
                    .total_cmp(&meta::quantity(&b["spec"]["capacity"]["storage"]))
            })
    });
    if let Some(pv) = candidate {
        bind(shared, k, pv, claim, true);
        return;
    }
    if let Some(class) = class
        && (!delay || selected)
        && class["provisioner"]
            .as_str()
            .is_some_and(|p| p != "kubernetes.io/no-provisioner")
    {
        provision(shared, k, class, claim);
    }
}

fn provision(shared: &Shared, k: &Kinds, class: &Value, claim: &Value) {
    let pv_name = format!("pvc-{}", meta::uid(claim));
    let dir = shared.data_dir.join("volumes").join(&pv_name);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let provisioner = class["provisioner"].clone();
    let _ = shared.store.modify(
        &k.pvc,
        meta::namespace(claim),
        meta::name(claim),
        Part::Main,
        |c| {
            let a = &mut c["metadata"]["annotations"];
            let changed = a["volume.kubernetes.io/storage-provisioner"] != provisioner;
            a["volume.kubernetes.io/storage-provisioner"] = provisioner.clone();
            a["volume.beta.kubernetes.io/storage-provisioner"] = provisioner.clone();
            changed
        },
    );
    let pv = json!({
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": provisioner}},
        "spec": {
            "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
            "accessModes": claim["spec"]["accessModes"],
            "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
            "storageClassName": meta::name(class),
            "volumeMode": claim["spec"]["volumeMode"],
            "hostPath": {"path": dir.to_string_lossy(), "type": ""},
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta::namespace(claim), "name": meta::name(claim), "uid": meta::uid(claim), "apiVersion": "v1"},
        }
    });
    if let Ok(created) = shared.store.create(&k.pv, "", pv, false) {
        let message = format!("Successfully provisioned volume {}", meta::name(&created));
        super::events::record(
            shared,
            claim,
            false,
            "ProvisioningSucceeded",
            &message,
            provisioner.as_str().unwrap_or_default(),
        );
        bind(shared, k, &created, claim, true);
    }
}

fn sync_volume(shared: &Shared, k: &Kinds, pv: &Value) {
    let name = meta::name(pv).to_string();
    let claim_ref = &pv["spec"]["claimRef"];
    let phase = if claim_ref.is_null() || claim_ref["uid"].as_str().unwrap_or_default().is_empty() {
        "Available"
    } else {
        let ns = claim_ref["namespace"].as_str().unwrap_or_default();
        let cname = claim_ref["name"].as_str().unwrap_or_default();
        match shared.store.get(&k.pvc, ns, cname) {
            Ok(c) if meta::uid(&c) == claim_ref["uid"].as_str().unwrap_or_default() => {
                if c["spec"]["volumeName"].as_str() == Some(name.as_str()) {
                    "Bound"
                } else {
                    return;
                }
            }
            _ => "Released",
        }
    };
    if phase == "Released"
        && pv["status"]["phase"] == "Released"
        && pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        && !meta::deleting(pv)
    {
        if let Some(path) = volume_path(&shared.data_dir, pv)
            .filter(|p| p.starts_with(shared.data_dir.join("volumes")))
        {
            let _ = std::fs::remove_dir_all(path);
        }
        let _ = shared
            .store
            .delete(&k.pv, "", &name, &DeleteOptions::default());
        return;
    }
    let _ = shared.store.modify(&k.pv, "", &name, Part::Status, |p| {
        if p["status"]["phase"] == phase {
            return false;
        }
        p["status"] = json!({"phase": phase, "lastPhaseTransitionTime": meta::now()});
        true
    });
}

fn protect(shared: &Shared, k: &Kinds) {
    let deleting_claims: Vec<Value> = shared.store.select(&k.pvc, meta::deleting);
    // Only pods that mount a claim matter.
    let pods = if deleting_claims.is_empty() {
        vec![]
    } else {
        shared.store.select(&k.pods, |p| {
            p["spec"]["volumes"]
                .as_array()
                .is_some_and(|vs| vs.iter().any(|v| v["persistentVolumeClaim"].is_object()))
        })
    };
    let in_use = |claim: &Value| {
        pods.iter().any(|p| {
            meta::namespace(p) == meta::namespace(claim)
                && !matches!(
                    p["status"]["phase"].as_str(),
                    Some("Succeeded") | Some("Failed")
                )
                && p["spec"]["volumes"].as_array().is_some_and(|vs| {
                    vs.iter().any(|v| {
                        v["persistentVolumeClaim"]["claimName"].as_str() == Some(meta::name(claim))
                    })
                })
        })
    };
    for claim in &deleting_claims {
        if !in_use(claim) {
            drop_finalizer(
                shared,
                &k.pvc,
                meta::namespace(claim),
                meta::name(claim),
                "kubernetes.io/pvc-protection",
            );
        }
    }
    for pv in shared.store.all(&k.pv).iter().filter(|p| meta::deleting(p)) {
        if pv["status"]["phase"] != "Bound" {
            drop_finalizer(
                shared,
                &k.pv,
                "",
                meta::name(pv),
                "kubernetes.io/pv-protection",
            );
        }
    }
}

/// Removes one finalizer (the object goes once none remain).
pub fn drop_finalizer(shared: &Shared, ri: &ResourceInfo, ns: &str, name: &str, finalizer: &str) {
    let _ = shared.store.modify(ri, ns, name, Part::Main, |o| {
        let fins = meta::finalizers(o);
        if !fins.iter().any(|f| f == finalizer) {
            return false;
        }
        meta::set_finalizers(o, fins.into_iter().filter(|f| f != finalizer).collect());
        true
    });
}
