//! The validation this suite meets, with kube-apiserver's messages: object names
//! (apimachinery/pkg/util/validation), PVC spec immutability
//! (pkg/apis/core/validation `ValidatePersistentVolumeClaimUpdate`), the StatefulSet update rule
//! (pkg/apis/apps/validation `ValidateStatefulSetUpdate`), Job template immutability
//! (pkg/apis/batch/validation) and pod spec immutability (`ValidatePodUpdate`).

use serde_json::{Value, json};

use super::errors::{ApiError, FieldError};
use super::meta;
use super::resources::ResourceInfo;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

fn name_errors(ri: &ResourceInfo, obj: &Value) -> Vec<FieldError> {
    let name = meta::name(obj);
    if name.is_empty() {
        return vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    let label_named = matches!(ri.kind.as_str(), "Namespace" | "Service");
    if label_named && !is_label(name) {
        return vec![FieldError::invalid("metadata.name", json!(name), LABEL_MSG)];
    }
    if !label_named && !is_subdomain(name) {
        return vec![FieldError::invalid(
            "metadata.name",
            json!(name),
            SUBDOMAIN_MSG,
        )];
    }
    vec![]
}

/// Validation on create.
pub fn validate_create(ri: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let mut errs = name_errors(ri, obj);
    match ri.kind.as_str() {
        "PersistentVolumeClaim" => {
            if obj["spec"]["accessModes"]
                .as_array()
                .is_none_or(|a| a.is_empty())
            {
                errs.push(FieldError::required(
                    "spec.accessModes",
                    "at least 1 access mode is required",
                ));
            }
            if obj["spec"]["resources"]["requests"]["storage"].is_null() {
                errs.push(FieldError::required("spec.resources[storage]", ""));
            }
        }
        "Pod"
            if obj["spec"]["containers"]
                .as_array()
                .is_none_or(|a| a.is_empty()) =>
        {
            errs.push(FieldError::required("spec.containers", ""));
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if let Some(sel) =
                super::selectors::LabelSelector::from_object(&obj["spec"]["selector"])
            {
                if !sel.matches(&obj["spec"]["template"]["metadata"]["labels"]) {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        obj["spec"]["template"]["metadata"]["labels"].clone(),
                        "`selector` does not match template `labels`",
                    ));
                }
            } else {
                errs.push(FieldError::required("spec.selector", ""));
            }
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(ri, meta::name(obj), &errs))
    }
}

fn without(v: &Value, paths: &[&[&str]]) -> Value {
    let mut v = v.clone();
    for path in paths {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut cur = &mut v;
        for p in parents {
            cur = &mut cur[*p];
        }
        if let Some(m) = cur.as_object_mut() {
            m.remove(*last);
        }
    }
    v
}

/// A short rendering of the changed spec, where the apiserver prints a cmp.Diff.
fn diff_note(kind: &str) -> String {
    format!("\n  {kind}{{...}}")
}

/// Validation on update, given the stored object.
pub fn validate_update(ri: &ResourceInfo, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut errs = Vec::new();
    match ri.kind.as_str() {
        "PersistentVolumeClaim" => {
            let bound = old["status"]["phase"] == "Bound";
            let mut old_spec = old["spec"].clone();
            let mut new_spec = new["spec"].clone();
            // volumeName may be set once, by the binder or a user (`ValidatePersistentVolumeClaimUpdate`).
            if old_spec["volumeName"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                match new_spec.get("volumeName") {
                    Some(v) => old_spec["volumeName"] = v.clone(),
                    None => {
                        old_spec.as_object_mut().map(|m| m.remove("volumeName"));
                    }
                }
            }
            if bound {
                let old_size = meta::quantity(&old_spec["resources"]["requests"]["storage"]);
                let new_size = meta::quantity(&new_spec["resources"]["requests"]["storage"]);
                if new_size < old_size {
                    errs.push(FieldError::forbidden(
                        "spec.resources.requests.storage",
                        "field can not be less than previous value",
                    ));
                }
                old_spec = without(&old_spec, &[&["resources", "requests"]]);
                new_spec = without(&new_spec, &[&["resources", "requests"]]);
            }
            if old_spec != new_spec {
                errs.insert(0, FieldError::forbidden(
                    "spec",
                    &format!("spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims{}", diff_note("core.PersistentVolumeClaimSpec")),
                ));
            }
        }
        "StatefulSet" => {
            let allowed: &[&[&str]] = &[
                &["replicas"],
                &["ordinals"],
                &["template"],
                &["updateStrategy"],
                &["persistentVolumeClaimRetentionPolicy"],
                &["minReadySeconds"],
            ];
            if without(&old["spec"], allowed) != without(&new["spec"], allowed) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        "Deployment" | "ReplicaSet"
            if old["spec"]["selector"] != new["spec"]["selector"] && ri.kind == "Deployment" =>
        {
            errs.push(FieldError::invalid(
                "spec.selector",
                json!("v1.LabelSelector{...}"),
                "field is immutable",
            ));
        }
        "Job" => {
            let mut old_t = old["spec"]["template"].clone();
            let mut new_t = new["spec"]["template"].clone();
            // Scheduling directives of suspended jobs may change; labels and annotations always may not.
            for t in [&mut old_t, &mut new_t] {
                if let Some(m) = t["metadata"].as_object_mut() {
                    m.remove("creationTimestamp");
                }
            }
            if old_t != new_t {
                errs.push(FieldError::invalid(
                    "spec.template",
                    json!("core.PodTemplateSpec{...}"),
                    "field is immutable",
                ));
            }
            for f in ["completions", "selector", "completionMode"] {
                if old["spec"][f] != new["spec"][f]
                    && !(f == "completions"
                        && old["spec"]["parallelism"] != new["spec"]["parallelism"])
                {
                    errs.push(FieldError::invalid(
                        &format!("spec.{f}"),
                        new["spec"][f].clone(),
                        "field is immutable",
                    ));
                }
            }
        }
        "Pod" => {
            let strip = |spec: &Value| {
                let mut s = without(
                    spec,
                    &[
                        &["activeDeadlineSeconds"],
                        &["tolerations"],
                        &["terminationGracePeriodSeconds"],
                    ],
                );
                for list in ["containers", "initContainers"] {
                    if let Some(cs) = s[list].as_array_mut() {
                        for c in cs {
                            c.as_object_mut().map(|m| m.remove("image"));
                        }
                    }
                }
                // The scheduler binds unscheduled pods through the binding subresource.
                if spec["nodeName"].is_null() || spec["nodeName"] == "" {
                    s.as_object_mut().map(|m| m.remove("nodeName"));
                }
                s
            };
            let mut old_s = strip(&old["spec"]);
            let new_s = strip(&new["spec"]);
            if old_s.get("nodeName").is_none()
                && let Some(n) = new_s.get("nodeName")
            {
                old_s["nodeName"] = n.clone();
            }
            if old_s != new_s {
                errs.push(FieldError::forbidden(
                    "spec",
                    &format!("pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative){}", diff_note("core.PodSpec")),
                ));
            }
        }
        _ => {}
    }
    if meta::deleting(old) {
        let old_f = meta::finalizers(old);
        if let Some(added) = meta::finalizers(new)
            .into_iter()
            .find(|f| !old_f.contains(f))
        {
            errs.push(FieldError::forbidden("metadata.finalizers", &format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{added:?}}}")));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(ri, meta::name(new), &errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::resources::builtin;

    #[test]
    fn sts_selector_change_is_forbidden_but_replicas_is_not() {
        let sts = builtin("apps", "statefulsets").expect("sts");
        let old = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "serviceName": "a", "selector": {}}});
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(validate_update(&sts, &old, &new).is_ok());
        new["spec"]["serviceName"] = json!("b");
        let err = validate_update(&sts, &old, &new).expect_err("forbidden");
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains(
                "updates to statefulset spec for fields other than 'replicas', 'ordinals'"
            )
        );
    }

    #[test]
    fn pvc_requests_grow_only_when_bound() {
        let pvc = builtin("", "persistentvolumeclaims").expect("pvc");
        let old = json!({"metadata": {"name": "d"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound"}});
        let mut new = old.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(validate_update(&pvc, &old, &new).is_ok());
        new["spec"]["resources"]["requests"]["storage"] = json!("500Mi");
        assert!(validate_update(&pvc, &old, &new).is_err());
        let mut pending = old.clone();
        pending["status"]["phase"] = json!("Pending");
        let mut grown = pending.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(validate_update(&pvc, &pending, &grown).is_err());
    }

    #[test]
    fn names_are_checked() {
        let cm = builtin("", "configmaps").expect("cm");
        let err =
            validate_create(&cm, &json!({"metadata": {"name": "Bad_Name"}})).expect_err("invalid");
        assert!(err.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
    }
}
