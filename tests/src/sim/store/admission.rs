//! What the store applies around validation, as admission plugins and Go struct decoding do
//! on a real server: claim resize admission and dropping `null`s from built-in objects.

use serde_json::{Value, json};

use super::{Result, State};
use crate::sim::errors::ApiError;
use crate::sim::meta;
use crate::sim::resources::{self, ResourceInfo};

/// The PersistentVolumeClaimResize admission plugin: a claim may grow only when its
/// StorageClass allows volume expansion (plugin/pkg/admission/storage/persistentvolume/resize).
pub(super) fn resize_admission(
    st: &State,
    ri: &ResourceInfo,
    old: &Value,
    new: &Value,
) -> Result<()> {
    if ri.kind != "PersistentVolumeClaim" {
        return Ok(());
    }
    let size = |o: &Value| meta::quantity(&o["spec"]["resources"]["requests"]["storage"]);
    if size(new) <= size(old) {
        return Ok(());
    }
    let class = new["spec"]["storageClassName"].as_str().unwrap_or_default();
    let expandable = st
        .objects
        .get("storage.k8s.io/storageclasses")
        .and_then(|b| b.get(&(String::new(), class.to_string())))
        .is_some_and(|c| c["allowVolumeExpansion"] == json!(true));
    if expandable {
        return Ok(());
    }
    Err(ApiError::custom(
        403,
        "Forbidden",
        format!(
            "persistentvolumeclaims \"{}\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
            meta::name(new)
        ),
        json!({"name": meta::name(new), "kind": "persistentvolumeclaims"}),
    ))
}

pub(super) fn is_builtin(ri: &ResourceInfo) -> bool {
    resources::builtin(&ri.group, &ri.plural).is_some()
}

/// Built-in objects pass through Go structs on a real server, where `null` and absent are the
/// same; drop nulls so stored objects compare the way the real ones do.
pub(super) fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
