//! Garbage collection (pkg/controller/garbagecollector) and namespace deletion
//! (pkg/controller/namespace): dependents whose owners are gone are deleted; `foregroundDeletion`
//! waits for dependents to go first; `orphan` strips owner references; a terminating namespace is
//! emptied, then removed.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::volumes::drop_finalizer;
use crate::sim::resources::{ResourceInfo, builtin};
use crate::sim::store::{DeleteOptions, Part};
use crate::sim::{Shared, meta};

/// One pass.
pub fn sync(shared: &Shared) {
    let mut seen = HashSet::new();
    let resources: Vec<ResourceInfo> = shared
        .store
        .resources()
        .into_iter()
        .filter(|r| seen.insert(r.key()))
        .collect();
    let mut objects: Vec<(ResourceInfo, Value)> = Vec::new();
    for r in &resources {
        for o in shared.store.all(r) {
            objects.push((r.clone(), o));
        }
    }
    let uids: HashSet<String> = objects
        .iter()
        .map(|(_, o)| meta::uid(o).to_string())
        .collect();
    let mut dependents: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (_, o)) in objects.iter().enumerate() {
        for r in meta::owner_refs(o) {
            dependents
                .entry(r["uid"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(i);
        }
    }
    for (ri, o) in &objects {
        let refs = meta::owner_refs(o);
        if !refs.is_empty()
            && !meta::deleting(o)
            && refs
                .iter()
                .all(|r| !uids.contains(r["uid"].as_str().unwrap_or_default()))
        {
            let _ = shared.store.delete(
                ri,
                meta::namespace(o),
                meta::name(o),
                &DeleteOptions::default(),
            );
        }
        if !meta::deleting(o) {
            continue;
        }
        let fins = meta::finalizers(o);
        let deps = dependents.get(meta::uid(o)).cloned().unwrap_or_default();
        if fins.iter().any(|f| f == "orphan") {
            for &i in &deps {
                let (dri, d) = &objects[i];
                let owner = meta::uid(o).to_string();
                let _ =
                    shared
                        .store
                        .modify(dri, meta::namespace(d), meta::name(d), Part::Main, |x| {
                            if let Some(a) = x["metadata"]["ownerReferences"].as_array_mut() {
                                a.retain(|r| r["uid"].as_str() != Some(owner.as_str()));
                                if a.is_empty() {
                                    x["metadata"]
                                        .as_object_mut()
                                        .map(|m| m.remove("ownerReferences"));
                                }
                            }
                            true
                        });
            }
            drop_finalizer(shared, ri, meta::namespace(o), meta::name(o), "orphan");
        }
        if fins.iter().any(|f| f == "foregroundDeletion") {
            if deps.is_empty() {
                drop_finalizer(
                    shared,
                    ri,
                    meta::namespace(o),
                    meta::name(o),
                    "foregroundDeletion",
                );
            } else {
                for &i in &deps {
                    let (dri, d) = &objects[i];
                    if !meta::deleting(d) {
                        let opts = DeleteOptions {
                            propagation: Some("Foreground".into()),
                            ..Default::default()
                        };
                        let _ = shared
                            .store
                            .delete(dri, meta::namespace(d), meta::name(d), &opts);
                    }
                }
            }
        }
    }
    let ns_ri = builtin("", "namespaces").expect("built in");
    for ns in objects
        .iter()
        .filter(|(r, o)| r.kind == "Namespace" && meta::deleting(o))
        .map(|(_, o)| meta::name(o).to_string())
    {
        let content: Vec<&(ResourceInfo, Value)> = objects
            .iter()
            .filter(|(r, o)| r.namespaced && meta::namespace(o) == ns)
            .collect();
        if content.is_empty() {
            shared.store.remove(&ns_ri, "", &ns);
        }
        for (r, o) in content {
            if !meta::deleting(o) {
                let _ = shared
                    .store
                    .delete(r, &ns, meta::name(o), &DeleteOptions::default());
            }
        }
    }
}
