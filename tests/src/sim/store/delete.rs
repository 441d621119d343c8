//! Deletion: preconditions, finalizers and deletionTimestamp, propagation finalizers, graceful
//! pod deletion, and what the response carries (registry/generic/registry/store.go `Delete`).

use serde_json::{Value, json};

use super::{DeleteOptions, Result, State, Store, get_in, ns_key, with_version};
use crate::sim::errors::ApiError;
use crate::sim::meta;
use crate::sim::resources::{self, ResourceInfo};

impl Store {
    /// Deletes an object, or marks it for deletion while finalizers or a grace period remain.
    /// Returns the object when it still exists (or the resource returns deleted objects), else
    /// a success `Status` (registry/generic/registry/store.go `finalizeDelete`).
    pub fn delete(
        &self,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = get_in(&st, ri, ns, name)?.clone();
        if opts.uid.as_deref().is_some_and(|u| u != meta::uid(&obj)) {
            return Err(ApiError::conflict(
                ri,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    opts.uid.as_deref().unwrap_or_default(),
                    meta::uid(&obj)
                ),
            ));
        }
        if let Some(rv) = opts.rv.as_deref()
            && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(
                ri,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    obj["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                ),
            ));
        }
        let mut fins = meta::finalizers(&obj);
        match opts.propagation.as_deref() {
            Some("Foreground") if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.push("foregroundDeletion".into())
            }
            Some("Orphan") if !fins.iter().any(|f| f == "orphan") => fins.push("orphan".into()),
            _ => {}
        }
        if ri.kind == "Namespace" && !meta::deleting(&obj) {
            obj["status"]["phase"] = json!("Terminating");
        }
        let graceful = ri.kind == "Pod" && pod_needs_grace(&obj, opts.grace);
        if !fins.is_empty() || graceful || ri.kind == "Namespace" {
            if !meta::deleting(&obj) {
                obj["metadata"]["deletionTimestamp"] = json!(meta::now());
                let grace = if graceful {
                    opts.grace
                        .or(obj["spec"]["terminationGracePeriodSeconds"].as_i64())
                        .unwrap_or(30)
                } else {
                    0
                };
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            } else if ri.kind == "Pod" && opts.grace == Some(0) {
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            meta::set_finalizers(&mut obj, fins);
            if opts.dry_run {
                return Ok(with_version(obj, ri));
            }
            let rv = st.rv + 1;
            st.rv = rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            st.objects
                .entry(ri.key())
                .or_default()
                .insert((ns_key(ri, ns), name.into()), obj.clone());
            self.after_write(&mut st, ri, "MODIFIED", &obj);
            return Ok(with_version(obj, ri));
        }
        if !opts.dry_run {
            self.remove_locked(&mut st, ri, ns, name);
        }
        if ri.kind == "Pod"
            || ri.kind == "Namespace"
            || !resources::builtins().iter().any(|b| b.key() == ri.key())
        {
            return Ok(with_version(obj, ri));
        }
        let mut details = json!({ "name": name, "kind": ri.plural, "uid": meta::uid(&obj) });
        if !ri.group.is_empty() {
            details["group"] = json!(ri.group);
        }
        Ok(
            json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details }),
        )
    }

    /// Removes an object now, whatever its finalizers.
    pub fn remove(&self, ri: &ResourceInfo, ns: &str, name: &str) -> Option<Value> {
        let mut st = self.lock();
        self.remove_locked(&mut st, ri, ns, name)
    }

    /// The end of a pod's graceful deletion: the kubelet, its containers stopped, deletes the
    /// pod again with a grace period of 0 (pkg/kubelet/status/status_manager.go). The API
    /// server removes it only once no finalizer is left; until then it stays, Terminating,
    /// with `deletionGracePeriodSeconds: 0` (staging/src/k8s.io/apiserver/pkg/registry/generic/
    /// registry/store.go `Delete`: objects with finalizers are only updated), and goes when
    /// its last finalizer is removed.
    pub fn end_grace(&self, ri: &ResourceInfo, ns: &str, name: &str) {
        let mut st = self.lock();
        let Some(obj) = st
            .objects
            .get(&ri.key())
            .and_then(|m| m.get(&(ns_key(ri, ns), name.to_string())))
        else {
            return;
        };
        if meta::finalizers(obj).is_empty() {
            self.remove_locked(&mut st, ri, ns, name);
            return;
        }
        let mut obj = obj.clone();
        if obj["metadata"]["deletionGracePeriodSeconds"] == json!(0) {
            return;
        }
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        st.objects
            .entry(ri.key())
            .or_default()
            .insert((ns_key(ri, ns), name.to_string()), obj.clone());
        self.after_write(&mut st, ri, "MODIFIED", &obj);
    }

    fn remove_locked(
        &self,
        st: &mut State,
        ri: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let mut obj = st
            .objects
            .get_mut(&ri.key())?
            .remove(&(ns_key(ri, ns), name.to_string()))?;
        st.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        self.after_write(st, ri, "DELETED", &obj);
        Some(obj)
    }
}

/// A pod is deleted gracefully unless it never ran, is finished or the grace period is 0
/// (pkg/registry/core/pod/strategy.go `CheckGracefulDelete`).
fn pod_needs_grace(pod: &Value, grace: Option<i64>) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    grace != Some(0)
        && pod["spec"]["nodeName"].is_string()
        && !matches!(phase, "Succeeded" | "Failed")
}
