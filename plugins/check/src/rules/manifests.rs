//! Target manifests (`-f`, the output of `helm template` or `kustomize build`): which workload
//! and claims the target really has, and StatefulSet fields that the API server refuses to
//! change in place.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;
use upgrade_shared::names::{parse_selector, selector_matches};
use upgrade_shared::profile::{Component, Outcome, WorkloadKind, statefulset_claims};
use upgrade_shared::version::{image_name, split_image};

use super::volumes::Target;
use crate::context::Context;
use crate::finding::{Finding, Severity};
use crate::runbook::Plan;

struct TargetObject {
    kind: WorkloadKind,
    name: String,
    template: Option<PodTemplateSpec>,
    claim_templates: Vec<String>,
    replicas: u32,
}

fn workloads(ctx: &Context<'_>) -> Vec<TargetObject> {
    ctx.options
        .targets
        .iter()
        .filter_map(|(_, value)| workload_object(value))
        .collect()
}

fn workload_object(value: &Value) -> Option<TargetObject> {
    let kind = match value["kind"].as_str() {
        Some("Deployment") => WorkloadKind::Deployment,
        Some("StatefulSet") => WorkloadKind::StatefulSet,
        Some("DaemonSet") => WorkloadKind::DaemonSet,
        _ => return None,
    };
    let spec = &value["spec"];
    Some(TargetObject {
        kind,
        name: value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        template: serde_json::from_value(spec["template"].clone()).ok(),
        claim_templates: spec["volumeClaimTemplates"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| {
                        t.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        replicas: spec["replicas"].as_u64().unwrap_or(1) as u32,
    })
}

impl TargetObject {
    /// Claims it mounts by name and claims its volumeClaimTemplates make.
    fn claims(&self) -> Vec<String> {
        let mut claims = mounted(self.template.as_ref());
        claims.extend(statefulset_claims(
            &self.claim_templates,
            &self.name,
            self.replicas.max(1),
        ));
        claims
    }
}

fn mounted(template: Option<&PodTemplateSpec>) -> Vec<String> {
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    v.persistent_volume_claim
                        .as_ref()
                        .map(|c| c.claim_name.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn belongs(component: &Component, object: &TargetObject, profile_name: Option<&str>) -> bool {
    let reqs = parse_selector(&component.selector).unwrap_or_default();
    let labels = object
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    (labels.is_some() && selector_matches(&reqs, labels))
        || profile_name == Some(object.name.as_str())
}

/// The target manifest file that holds a component's workload: the one whose StatefulSet
/// changes fields the API server refuses to update when there is one (that is the file the
/// re-create step must apply), else the first.
pub fn target_file(ctx: &Context<'_>, component: &Component) -> Option<String> {
    let profile_name = component.workload_at(&ctx.to).map(|w| w.name.as_str());
    let candidates: Vec<&(String, Value)> = ctx
        .options
        .targets
        .iter()
        .filter(|(_, value)| {
            workload_object(value).is_some_and(|o| belongs(component, &o, profile_name))
        })
        .collect();
    candidates
        .iter()
        .find(|(_, value)| immutable_change(ctx, value).is_some())
        .or(candidates.first())
        .map(|(file, _)| file.clone())
}

/// For a target StatefulSet that exists live: its name, namespace and the fields it changes
/// that cannot be updated in place (`None` when it changes none).
fn immutable_change(
    ctx: &Context<'_>,
    target: &Value,
) -> Option<(String, String, Vec<&'static str>)> {
    if target["kind"] != "StatefulSet" {
        return None;
    }
    let name = target.pointer("/metadata/name").and_then(Value::as_str)?;
    let ns = target
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(&ctx.snapshot.namespace);
    let live = ctx.snapshot.statefulsets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.as_deref().is_none_or(|n| n == ns)
    })?;
    let changed = changed_immutable_fields(live, target);
    (!changed.is_empty()).then(|| (name.to_string(), ns.to_string(), changed))
}

/// The target's workload for a component, found by the component's selector on the pod
/// template or by the workload name the profile gives.
pub(super) fn target_workload(ctx: &Context<'_>, component: &Component) -> Option<Target> {
    let profile_name = component.workload_at(&ctx.to).map(|w| w.name.as_str());
    workloads(ctx)
        .into_iter()
        .find(|o| belongs(component, o, profile_name))
        .map(|o| {
            let claims = o.claims();
            Target {
                kind: o.kind,
                name: o.name,
                claims,
            }
        })
}

/// The image the target gives a component's container of this image name.
pub(super) fn target_image(
    ctx: &Context<'_>,
    component: &Component,
    image: &str,
) -> Option<String> {
    let profile_name = component.workload_at(&ctx.to).map(|w| w.name.as_str());
    workloads(ctx)
        .into_iter()
        .filter(|o| belongs(component, o, profile_name))
        .filter_map(|o| o.template)
        .filter_map(|t| t.spec)
        .flat_map(|s| s.containers)
        .filter_map(|c| c.image)
        .find(|img| image_name(split_image(img).0) == image)
}

/// Every claim name the target manifests mention: claim objects, mounted claims, and claims
/// their StatefulSets will create.
pub(super) fn claims_in_targets(ctx: &Context<'_>) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ctx
        .options
        .targets
        .iter()
        .filter(|(_, v)| v["kind"] == "PersistentVolumeClaim")
        .filter_map(|(_, v)| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    for o in workloads(ctx) {
        names.extend(o.claims());
    }
    names
}

/// Fields of `spec` the API server refuses to update, compared only where the target sets
/// them (an apply leaves unset fields as they are). The updatable fields are `replicas`,
/// `ordinals`, `template`, `updateStrategy`, `persistentVolumeClaimRetentionPolicy` and
/// `minReadySeconds` (apps/validation ValidateStatefulSetUpdate).
pub fn changed_immutable_fields(live: &StatefulSet, target: &Value) -> Vec<&'static str> {
    let live_spec = serde_json::to_value(&live.spec).unwrap_or(Value::Null);
    let want = &target["spec"];
    let mut changed = Vec::new();
    for (field, default) in [
        ("selector", Value::Null),
        ("serviceName", Value::String(String::new())),
        ("podManagementPolicy", Value::String("OrderedReady".into())),
        ("revisionHistoryLimit", Value::from(10)),
    ] {
        let Some(w) = want.get(field) else { continue };
        let l = live_spec.get(field).cloned().unwrap_or(default);
        if *w != l {
            changed.push(match field {
                "selector" => "spec.selector",
                "serviceName" => "spec.serviceName",
                "podManagementPolicy" => "spec.podManagementPolicy",
                _ => "spec.revisionHistoryLimit",
            });
        }
    }
    if let Some(w) = want.get("volumeClaimTemplates") {
        let normalise = |v: &Value| -> Vec<Value> {
            v.as_array()
                .map(|ts| {
                    ts.iter()
                        .map(|t| {
                            serde_json::json!({
                                "name": t.pointer("/metadata/name"),
                                "labels": t.pointer("/metadata/labels"),
                                "accessModes": t.pointer("/spec/accessModes"),
                                "storageClassName": t.pointer("/spec/storageClassName"),
                                "storage": t.pointer("/spec/resources/requests/storage").and_then(Value::as_str).map(normalise_quantity),
                                "volumeMode": t.pointer("/spec/volumeMode").and_then(Value::as_str).unwrap_or("Filesystem"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let live_templates = live_spec
            .get("volumeClaimTemplates")
            .cloned()
            .unwrap_or(Value::Null);
        if normalise(w) != normalise(&live_templates) {
            changed.push("spec.volumeClaimTemplates");
        }
    }
    changed
}

/// `1Gi` and `1024Mi` are the same quantity: compare bytes where the quantity parses.
fn normalise_quantity(q: &str) -> String {
    upgrade_shared::quantity::bytes(q).map_or_else(|| q.to_string(), |b| b.to_string())
}

pub(super) fn immutable_statefulset_fields(
    ctx: &Context<'_>,
    findings: &mut Vec<Finding>,
    plan: &mut Plan,
) {
    // One finding and one delete + apply pair per StatefulSet, however many -f documents
    // describe it.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (file, target) in &ctx.options.targets {
        let Some((name, ns, changed)) = immutable_change(ctx, target) else {
            continue;
        };
        if !seen.insert((ns.clone(), name.clone())) {
            continue;
        }
        let (name, ns) = (name.as_str(), ns.as_str());
        let owner = ctx
            .profile
            .components
            .iter()
            .find(|c| c.workload_at(&ctx.to).is_some_and(|w| w.name == name));
        // A component deployed anew (Kubeflow 1.7's MinIO) has its StatefulSet removed and
        // created again by the application's own tool: nothing is updated in place.
        if owner.is_some_and(|c| c.redeployed_at(&ctx.to) && !c.redeployed_at(&ctx.from)) {
            continue;
        }
        let component = owner.map_or_else(|| format!("sts/{name}"), |c| c.name.clone());
        findings.push(Finding {
            severity: Severity::Warning,
            component,
            code: "statefulset-immutable-fields".into(),
            message: format!(
                "applying {file} changes {} of sts/{name}, which the API server refuses (422: updates to statefulset spec for fields other than … are forbidden)",
                changed.join(", ")
            ),
            remediation: "delete the StatefulSet with --cascade=orphan (its pods and claims stay) and apply the new one, which adopts them".into(),
            evidence: changed.iter().map(|f| format!("sts/{name} {f}")).collect(),
            impact: Outcome::NeedsSteps,
        });
        // The profile may know the change already and carry the pair among its own steps,
        // in the order the application's guide gives: then it is not asked for twice.
        let known = ctx.edges_in_use().iter().any(|e| {
            e.steps.iter().any(|t| {
                t.command
                    .starts_with(&format!("kubectl delete sts {name} "))
            })
        });
        if known {
            continue;
        }
        Plan::push(
            &mut plan.prepare,
            format!(
                "Delete sts/{name} but keep its pods and claims, because its new spec changes fields that cannot be updated"
            ),
            format!("kubectl delete sts {name} -n {ns} --cascade=orphan"),
        );
        Plan::push(
            &mut plan.prepare,
            format!(
                "Re-create sts/{name} from the target manifests; it adopts the running pods and existing claims"
            ),
            format!(
                "kubectl apply -f {} -n {ns}",
                crate::runbook::shell_word(file)
            ),
        );
    }
}
