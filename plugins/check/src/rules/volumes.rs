//! Volumes that an upgrade would leave behind: claims renamed when a Deployment becomes a
//! StatefulSet, components deployed anew on fresh claims, claims the target manifests no longer
//! mention, and `Delete` reclaim policies behind any of them.

use std::collections::BTreeSet;

use upgrade_shared::profile::{Component, Mode, Outcome, WorkloadKind};

use crate::context::Context;
use crate::finding::{Finding, Severity};
use crate::persistence::chart_managed;
use crate::runbook::{Plan, claim_size, component_claims};

/// The annotation in which `kubectl upgrade-migrate-pv retain` records a volume's original
/// reclaim policy.
const ORIGINAL_POLICY: &str = "upgrade.kubectl-upgrade.dev/original-reclaim-policy";

/// What the target version runs a component as.
pub(super) struct Target {
    pub kind: WorkloadKind,
    pub name: String,
    pub claims: Vec<String>,
}

/// The target manifests' workload for a component, else the profile's.
fn target_of(ctx: &Context<'_>, c: &Component) -> Option<Target> {
    crate::rules::manifests::target_workload(ctx, c).or_else(|| {
        c.workload_at(&ctx.to).map(|w| Target {
            kind: w.kind,
            name: w.name.clone(),
            claims: w.chart_claims(),
        })
    })
}

pub(super) fn claims(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    // Only chart-made claims are at risk: a user's own claims are handed to the new version
    // as they are. A reinstall moves the data by dump and import instead.
    if ctx.reinstall() {
        return;
    }
    let mut handled = BTreeSet::new();
    let mut retain = Vec::new();
    let mut adoptions: Vec<Adoptions> = Vec::new();
    for c in ctx
        .profile
        .components
        .iter()
        .filter(|c| c.data && ctx.mode_of(c) == Mode::StorageClass)
    {
        let ns = ctx.namespace_of(c);
        let old = component_claims(ctx, c);
        if old.is_empty() {
            continue;
        }
        let before = c.workload_at(&ctx.from);
        let live = ctx.workloads_of(c);
        let old_kind = live
            .first()
            .map(|w| {
                if w.kind == "sts" {
                    WorkloadKind::StatefulSet
                } else {
                    WorkloadKind::Deployment
                }
            })
            .or(before.map(|w| w.kind));
        let Some(target) = target_of(ctx, c) else {
            continue;
        };
        if c.redeployed_at(&ctx.to) && !c.redeployed_at(&ctx.from) {
            redeployed(ctx, c, &ns, &old, &target, findings, plan);
            retain.extend(old.iter().cloned());
            handled.extend(old);
        } else if old_kind == Some(WorkloadKind::Deployment)
            && target.kind == WorkloadKind::StatefulSet
        {
            // A component that becomes one replica of a shared StatefulSet (FATE's node
            // managers) takes that ordinal's claims only.
            let ordinal = c.workload_at(&ctx.to).and_then(|w| w.ordinal);
            let renamed: Vec<(String, String)> = old
                .iter()
                .filter(|o| !target.claims.contains(o))
                .cloned()
                .zip(
                    target
                        .claims
                        .iter()
                        .filter(|n| !old.contains(n))
                        .filter(|n| ordinal.is_none_or(|o| n.ends_with(&format!("-{o}"))))
                        .cloned(),
                )
                .collect();
            if renamed.is_empty() {
                continue;
            }
            let workload = live.first().map(|w| w.reference()).unwrap_or_else(|| {
                before
                    .map(|w| format!("{}/{}", w.kind.short(), w.name))
                    .unwrap_or_default()
            });
            findings.push(Finding {
                severity: Severity::Critical,
                component: c.name.clone(),
                code: "deployment-to-statefulset".into(),
                message: format!(
                    "{workload} becomes sts/{}, which expects claim{} {} (named <template>-<statefulset>-<ordinal>); the data in {} would not be mounted",
                    target.name,
                    if renamed.len() > 1 { "s" } else { "" },
                    renamed.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", "),
                    renamed.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>().join(", "),
                ),
                remediation: "stop the old workload and adopt each volume under the claim name the StatefulSet expects, before the upgrade".into(),
                evidence: renamed.iter().map(|(o, n)| format!("pvc/{o} → pvc/{n}")).collect(),
                impact: Outcome::NeedsSteps,
            });
            Plan::push(
                &mut plan.prepare,
                format!("Stop {workload} so that no pod uses its claims"),
                format!("kubectl scale {workload} --replicas=0 -n {ns}"),
            );
            // The claim is only free once the pod is gone, not when the scale is accepted: a
            // terminating pod still mounts it (graceful deletion, 30 s by default).
            Plan::push(
                &mut plan.prepare,
                format!("Wait until the pods of {workload} are gone"),
                format!(
                    "kubectl wait --for=delete pod -l {} -n {ns} --timeout=5m",
                    c.selector
                ),
            );
            // With target manifests the adoption checks the claim against the StatefulSet's
            // template there; the StatefulSet does not exist before the upgrade.
            let check_against = crate::rules::manifests::target_file(ctx, c)
                .map(|file| (target.name.clone(), file));
            let group = adoptions
                .iter_mut()
                .find(|a| a.namespace == ns && a.checked() == check_against.is_some());
            let group = match group {
                Some(g) => g,
                None => {
                    adoptions.push(Adoptions {
                        namespace: ns.clone(),
                        ..Adoptions::default()
                    });
                    adoptions.last_mut().expect("just pushed")
                }
            };
            if let Some((sts, file)) = check_against {
                if !group.statefulsets.contains(&sts) {
                    group.statefulsets.push(sts);
                }
                if !group.files.contains(&file) {
                    group.files.push(file);
                }
            }
            for (old_claim, new_claim) in &renamed {
                group.pairs.push((old_claim.clone(), new_claim.clone()));
                handled.insert(old_claim.clone());
                retain.push(old_claim.clone());
            }
        }
    }
    // One adoption command for all of a namespace's claims, after every workload is stopped:
    // migrate-pv carries the pairs out in parallel and waits for the bindings once (the
    // volume binder resyncs every 15 s on a real cluster; one pair after another waits a
    // period each).
    for group in &adoptions {
        group.push(plan);
    }
    dropped_by_manifests(ctx, findings, &mut handled, &mut retain);
    reclaim_policies(ctx, findings, plan, &retain);
}

/// The claims of one namespace handed to new names by one `upgrade-migrate-pv adopt`, and the
/// StatefulSets (with the target manifests holding them) each new claim is checked against.
#[derive(Default)]
struct Adoptions {
    namespace: String,
    pairs: Vec<(String, String)>,
    statefulsets: Vec<String>,
    files: Vec<String>,
}

impl Adoptions {
    fn checked(&self) -> bool {
        !self.statefulsets.is_empty()
    }

    /// The adoption step: `adopt OLD NEW` for one pair, `adopt OLD=NEW …` for several.
    fn push(&self, plan: &mut Plan) {
        let (claims, description) = match self.pairs.as_slice() {
            [] => return,
            [(old, new)] => (
                format!("{old} {new}"),
                format!(
                    "Hand the volume of {old} to {new} without copying (Retain first, then pre-bind)"
                ),
            ),
            pairs => (
                pairs
                    .iter()
                    .map(|(old, new)| format!("{old}={new}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                format!(
                    "Hand the volumes of these {} claims to the names their StatefulSets expect, without copying, in one command (Retain first, then pre-bind; in parallel, the bindings waited for once)",
                    pairs.len()
                ),
            ),
        };
        let mut checks: String = self
            .statefulsets
            .iter()
            .map(|sts| format!(" --for-statefulset {sts}"))
            .collect();
        for file in &self.files {
            checks.push_str(&format!(" -f {}", crate::runbook::shell_word(file)));
        }
        Plan::push(
            &mut plan.prepare,
            description,
            format!(
                "kubectl upgrade-migrate-pv adopt {claims} -n {}{checks}",
                self.namespace
            ),
        );
    }
}

fn redeployed(
    ctx: &Context<'_>,
    c: &Component,
    ns: &str,
    old: &[String],
    target: &Target,
    findings: &mut Vec<Finding>,
    plan: &mut Plan,
) {
    let fresh: Vec<&String> = target.claims.iter().filter(|n| !old.contains(n)).collect();
    findings.push(Finding {
        severity: Severity::Critical,
        component: c.name.clone(),
        code: "redeployed-on-new-storage".into(),
        message: format!(
            "{} {} is deployed anew on new storage; the data in {} must be copied over",
            c.name,
            ctx.display(&ctx.to),
            old.join(", ")
        ),
        remediation: "retain the old volume, copy the data into the new claim with verification, then delete the old claim and volume".into(),
        evidence: old.iter().map(|o| format!("pvc/{o}")).collect(),
        impact: Outcome::NeedsSteps,
    });
    if fresh.len() < old.len() {
        // Without the target manifests the new claim's name is not known, and a copy command
        // with a placeholder cannot run as printed: say how to get the real steps instead.
        Plan::push(
            &mut plan.migrate,
            format!(
                "The new {}'s claim is named only by the target version's manifests: once it is deployed, list its claims with this command, then run this check again with -f FILE (the new version's manifests) to get the stop, copy, verify and start steps for {}",
                c.name,
                old.join(", ")
            ),
            format!("kubectl get pvc -n {ns} -l {}", c.selector),
        );
        return;
    }
    let pairs: Vec<(String, String)> = old
        .iter()
        .zip(fresh)
        .map(|(o, dest)| (o.clone(), dest.to_string()))
        .collect();
    copy_steps(ctx, c, ns, target, &pairs, plan);
}

/// Copies old claims into a redeployed component's new ones: the new workload stopped first
/// and waited for until its pods are gone (migrate-pv refuses to write into a claim a pod
/// mounts), each copy verified by checksum, the workload started again with the replicas the
/// stop recorded, and the old claims cleaned up once it serves them. `upgrade-restart
/// quiesce` journals the replicas, so a re-run after a kill neither loses nor repeats them.
fn copy_steps(
    ctx: &Context<'_>,
    c: &Component,
    ns: &str,
    target: &Target,
    pairs: &[(String, String)],
    plan: &mut Plan,
) {
    let workload = format!("{}/{}", target.kind.short(), target.name);
    Plan::push(
        &mut plan.migrate,
        format!(
            "Stop the new {} (scale it to zero, its replicas recorded) and wait until its pods are gone, so that nothing mounts or writes its claim during the copy",
            c.name
        ),
        format!("kubectl upgrade-restart quiesce -n {ns} {workload}"),
    );
    for (old_claim, dest) in pairs {
        let size = claim_size(ctx, old_claim)
            .map(|s| format!(" (source holds up to {s})"))
            .unwrap_or_default();
        Plan::push(
            &mut plan.migrate,
            format!("Copy {old_claim} into {dest} and verify every file and checksum{size}"),
            format!(
                "kubectl upgrade-migrate-pv copy {old_claim} {dest} -n {ns} --verify=checksum --yes"
            ),
        );
    }
    Plan::push(
        &mut plan.migrate,
        format!(
            "Start the new {} on the copied data (the replicas the stop recorded) and wait until it is ready",
            c.name
        ),
        format!("kubectl upgrade-restart resume -n {ns}"),
    );
    for (old_claim, _) in pairs {
        Plan::push(
            &mut plan.finish,
            format!(
                "Once the new {} serves the data, delete the old claim and its volume",
                c.name
            ),
            format!("kubectl upgrade-migrate-pv cleanup {old_claim} -n {ns}"),
        );
    }
}

/// After a component was deployed anew (the running version is already past its
/// redeployment), claims of the component that no workload mounts still hold the data, unless
/// migrate-pv's journal records a verified copy of them: the only copy must not be deleted or
/// forgotten.
pub(super) fn left_behind(ctx: &Context<'_>, findings: &mut Vec<Finding>, plan: &mut Plan) {
    for c in ctx
        .profile
        .components
        .iter()
        .filter(|c| c.data && c.redeployed_at(&ctx.from))
    {
        let ns = ctx.namespace_of(c);
        let used = component_claims(ctx, c);
        let Some(new_claim) = used.first() else {
            continue;
        };
        let reqs = upgrade_shared::names::parse_selector(&c.selector).unwrap_or_default();
        let mut why = Vec::new();
        let left: Vec<String> = ctx
            .snapshot
            .claims
            .iter()
            .filter(|pvc| pvc.metadata.namespace.as_deref().is_none_or(|n| n == ns))
            .filter(|pvc| {
                upgrade_shared::names::selector_matches(&reqs, pvc.metadata.labels.as_ref())
            })
            .filter(|pvc| {
                pvc.metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| !used.contains(n))
            })
            .filter(|pvc| match copy_stands(ctx, &ns, pvc) {
                Ok(()) => false,
                Err(reason) => {
                    why.extend(reason);
                    true
                }
            })
            .filter_map(|pvc| pvc.metadata.name.clone())
            .collect();
        if left.is_empty() {
            continue;
        }
        findings.push(Finding {
            severity: Severity::Critical,
            component: c.name.clone(),
            code: "data-not-copied".into(),
            message: format!(
                "{} was deployed anew on {new_claim}, but {} still hold{} the only copy of its data: {}",
                c.name,
                left.join(", "),
                if left.len() > 1 { "" } else { "s" },
                if why.is_empty() {
                    "no verified copy is recorded".to_string()
                } else {
                    why.join("; ")
                }
            ),
            remediation: "copy the old claim into the new one with verification before deleting anything".into(),
            evidence: left.iter().map(|l| format!("pvc/{l}")).collect(),
            impact: Outcome::NeedsSteps,
        });
        let Some(target) = target_of(ctx, c) else {
            continue;
        };
        let pairs: Vec<(String, String)> = left
            .iter()
            .map(|l| (l.clone(), new_claim.clone()))
            .collect();
        copy_steps(ctx, c, &ns, &target, &pairs, plan);
    }
}

/// Whether migrate-pv's journal records a verified copy of `claim` that the cluster still
/// holds (the test migrate-pv's `cleanup` and upgrade-verify apply): the copy was taken from
/// this very claim (its UID), and the destination claim exists with its recorded UID, Bound to
/// the recorded volume. `Err` carries why a recorded copy does not count (none when no copy is
/// recorded).
fn copy_stands(
    ctx: &Context<'_>,
    namespace: &str,
    claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim,
) -> Result<(), Option<String>> {
    use upgrade_shared::pv_journal;
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let copy = pv_journal::verified_copy(namespace, name, &ctx.snapshot.journal).ok_or(None)?;
    let into = format!(
        "migrate-pv's verified copy of {name} into pvc {}/{}",
        copy.dest_namespace, copy.dest
    );
    let Some(proof) = &copy.proof else {
        return Err(Some(format!(
            "{into} was recorded without the objects it went between (copy again with this migrate-pv)"
        )));
    };
    let uid = claim.metadata.uid.as_deref().unwrap_or_default();
    if proof.source_claim_uid != uid {
        return Err(Some(format!(
            "{into} was taken from pvc/{name} uid {}, and pvc/{name} is uid {uid} now",
            proof.source_claim_uid
        )));
    }
    if copy.dest_namespace != namespace {
        return Err(Some(format!(
            "{into} went to another namespace than {namespace}, where the component runs"
        )));
    }
    let dest = ctx.snapshot.claims.iter().find(|c| {
        c.metadata.name.as_deref() == Some(copy.dest.as_str())
            && c.metadata.namespace.as_deref().unwrap_or(namespace) == copy.dest_namespace
    });
    let volume = ctx
        .snapshot
        .volumes
        .iter()
        .find(|v| v.metadata.name.as_deref() == Some(proof.dest_volume.as_str()));
    match pv_journal::dest_problem(proof, &copy.dest, &copy.dest_namespace, dest, volume) {
        Some(problem) => Err(Some(format!("{into} does not stand: {problem}"))),
        None => Ok(()),
    }
}

/// Claims in use now that no target manifest mentions: the upgrade removes them.
fn dropped_by_manifests(
    ctx: &Context<'_>,
    findings: &mut Vec<Finding>,
    handled: &mut BTreeSet<String>,
    retain: &mut Vec<String>,
) {
    if ctx.options.targets.is_empty() {
        return;
    }
    let kept = crate::rules::manifests::claims_in_targets(ctx);
    for c in ctx
        .profile
        .components
        .iter()
        .filter(|c| c.data && ctx.mode_of(c) == Mode::StorageClass)
    {
        for claim in component_claims(ctx, c) {
            if kept.contains(&claim) || handled.contains(&claim) {
                continue;
            }
            findings.push(Finding {
                severity: Severity::Critical,
                component: c.name.clone(),
                code: "claim-dropped".into(),
                message: format!("pvc/{claim} is used now but no target manifest mentions it; the upgrade leaves its data behind"),
                remediation: "retain its volume, then adopt it under the claim the target uses or copy its data".into(),
                evidence: vec![format!("pvc/{claim}")],
                impact: Outcome::NeedsSteps,
            });
            handled.insert(claim.clone());
            retain.push(claim);
        }
    }
}

/// `Delete` policies behind claims that go away, and chart-managed claims without Helm's keep.
fn reclaim_policies(
    ctx: &Context<'_>,
    findings: &mut Vec<Finding>,
    plan: &mut Plan,
    claims: &[String],
) {
    let ns = &ctx.snapshot.namespace;
    let mut delete = Vec::new();
    let mut unknown = Vec::new();
    let mut not_kept = Vec::new();
    // Volumes migrate-pv already retained carry their original policy: it still has to go
    // back after the upgrade.
    let mut recorded = false;
    for name in claims {
        let claim = ctx.snapshot.claim(ns, name);
        match claim.and_then(|c| ctx.snapshot.volume_of(c)) {
            Some(pv) => {
                recorded |= pv
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(ORIGINAL_POLICY));
                let policy = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
                    .unwrap_or("Delete");
                if policy == "Delete" {
                    delete.push((name.clone(), pv.metadata.name.clone().unwrap_or_default()));
                }
            }
            None => unknown.push(name.clone()),
        }
        if let Some(claim) = claim
            && chart_managed(claim)
            && claim
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("helm.sh/resource-policy"))
                .is_none_or(|v| v != "keep")
        {
            not_kept.push(name.clone());
        }
    }
    if !delete.is_empty() {
        findings.push(Finding {
            severity: Severity::Critical,
            component: ctx.profile.name.clone(),
            code: "reclaim-policy-delete".into(),
            message: format!(
                "{} volume{} behind claims the upgrade removes will be deleted with {}: reclaim policy Delete",
                delete.len(),
                if delete.len() > 1 { "s" } else { "" },
                if delete.len() > 1 { "them" } else { "it" }
            ),
            remediation: "set the volumes' reclaim policy to Retain before the upgrade (restore it afterwards)".into(),
            evidence: delete.iter().map(|(c, v)| format!("pvc/{c} → pv/{v}")).collect(),
            impact: Outcome::NeedsSteps,
        });
    }
    if !unknown.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            component: ctx.profile.name.clone(),
            code: "reclaim-policy-unknown".into(),
            message: format!("the reclaim policy behind {} is not in the input; treating it as Delete", unknown.join(", ")),
            remediation: "retain the volumes before the upgrade, or run the check against the cluster to know".into(),
            evidence: unknown.iter().map(|c| format!("pvc/{c}")).collect(),
            impact: Outcome::NeedsSteps,
        });
    }
    if !not_kept.is_empty() {
        findings.push(Finding {
            severity: Severity::Info,
            component: ctx.profile.name.clone(),
            code: "claim-not-kept".into(),
            message: format!(
                "Helm deletes {} on upgrade: no helm.sh/resource-policy: keep annotation",
                not_kept
                    .iter()
                    .map(|c| format!("pvc/{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            remediation: "the runbook retains the volumes so the data outlives the claims".into(),
            evidence: not_kept.iter().map(|c| format!("pvc/{c}")).collect(),
            impact: Outcome::Safe,
        });
    }
    let to_retain: Vec<String> = delete
        .iter()
        .map(|(c, _)| c.clone())
        .chain(unknown)
        .collect();
    if !to_retain.is_empty() || recorded {
        if !to_retain.is_empty() {
            plan.prepare.insert(
                0,
            crate::finding::Step {
                description: "Keep the volumes whatever happens to their claims (reclaim policy Retain; the original is recorded)".into(),
                command: format!("kubectl upgrade-migrate-pv retain {} -n {ns}", to_retain.join(" ")),
            },
        );
        }
        Plan::push(
            &mut plan.finish,
            "After the upgrade is verified, put the original reclaim policies back",
            format!("kubectl upgrade-migrate-pv restore-policy -n {ns} --all"),
        );
    }
}
