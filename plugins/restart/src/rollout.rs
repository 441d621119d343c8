//! The executor of `pods`: batch after batch, re-read each pod (a pod already replaced is not
//! touched again), journal the batch as restarting, evict, delete or run the restart command,
//! then wait until every slot holds a Ready pod, the restarted process groups have lost the
//! conditions they were selected for, and the application's health field is true. A batch
//! that does not get there stops the rollout: the outcome table says what was done and the
//! error names the pod, its state and its events.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, EvictParams, Preconditions};
use upgrade_shared::cluster::{Cluster, describe, retryable};
use upgrade_shared::list::{custom_resources, list_versioned};
use upgrade_shared::output::Format;
use upgrade_shared::profile::{HealthField, InPlace, ProcessGroups};
use upgrade_shared::progress::Progress;
use upgrade_shared::watch::Changes;

use crate::commands::{Entry, JOURNAL, ROLLOUT};
use crate::diagnose;
use crate::facts;
use crate::plan::{Mode, Rollout, Step};
use crate::render::{Outcome, Report};
use crate::select::{GroupFacts, GroupLabels, PodFacts};
use crate::slots::{self, Slot};

/// What the executor needs besides the rollout.
pub struct Context<'a> {
    pub cluster: &'a Cluster,
    pub timeout: Duration,
    pub health: Option<&'a HealthField>,
    pub in_place: Option<&'a InPlace>,
    pub groups: Option<&'a ProcessGroups>,
    /// Conditions a restarted pod's process group must lose (`--process-condition`).
    pub clear: &'a [String],
    /// The output format: progress is shown for tables only.
    pub format: Format,
}

/// Why a batch stopped the rollout.
struct Stop {
    /// The pods of the batch that are not done, with what to say about each.
    failed: Vec<(String, String)>,
    /// The whole story, for the error line.
    why: String,
    /// A refusal (disruption budget) rather than a failure.
    blocked: bool,
}

/// Runs what is left of the rollout; the journal follows every step.
pub async fn execute(ctx: &Context<'_>, rollout: &mut Rollout) -> anyhow::Result<Report> {
    let restarted: BTreeSet<String> = rollout.pods.iter().map(|p| p.uid.clone()).collect();
    let mut outcomes: Vec<Outcome> = rollout
        .pods
        .iter()
        .map(|p| Outcome {
            pod: p.name.clone(),
            batch: p.batch,
            result: if p.step == Step::Done {
                "ready"
            } else {
                "not-started"
            }
            .into(),
            now: None,
            seconds: None,
            detail: if p.step == Step::Done {
                "done in an earlier run".into()
            } else {
                String::new()
            },
        })
        .collect();
    let batches: Vec<Vec<String>> = rollout
        .remaining()
        .iter()
        .map(|b| b.iter().map(|p| p.name.clone()).collect())
        .collect();
    let total = batches.len();
    let to_do: usize = batches.iter().map(Vec::len).sum();
    let progress = Progress::items("restarting pods", Some(to_do as u64), "pods", ctx.format);
    let mut back = 0usize;
    // An application that is not healthy now may need several batches to become healthy again
    // (FoundationDB without a quorum of coordinators): then only the last batch waits for it.
    let (_, health) = application(ctx).await?;
    let healthy_now = health.iter().all(|(_, ok)| *ok == Some(true));
    if !healthy_now {
        progress.println(
            "note: the application is not healthy now; its health is awaited after the last batch only",
        );
    }
    let mut stopped = None;
    for (i, names) in batches.iter().enumerate() {
        progress.println(&format!(
            "batch {}/{total}: restarting {}",
            i + 1,
            names
                .iter()
                .map(|n| format!("pod/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let started = Instant::now();
        let await_health = healthy_now || i + 1 == total;
        let shown = Shown {
            progress: &progress,
            back,
        };
        match run_batch(ctx, rollout, names, &restarted, await_health, &shown).await? {
            Ok(now) => {
                back += names.len();
                progress.set(back as u64);
                for (name, serving) in names.iter().zip(now) {
                    rollout.set(name, Step::Done);
                    if let Some(o) = outcomes.iter_mut().find(|o| &o.pod == name) {
                        o.result = "ready".into();
                        o.now = serving;
                        o.seconds = Some(started.elapsed().as_secs_f64());
                    }
                }
                JOURNAL
                    .write(ctx.cluster, ROLLOUT, &Entry::Rollout(rollout.clone()))
                    .await?;
            }
            Err(stop) => {
                for (name, detail) in &stop.failed {
                    if let Some(o) = outcomes.iter_mut().find(|o| &o.pod == name) {
                        o.result = if stop.blocked { "blocked" } else { "failed" }.into();
                        o.detail = detail.clone();
                    }
                }
                stopped = Some(stop.why);
                break;
            }
        }
    }
    progress.finish();
    Ok(Report {
        namespace: ctx.cluster.namespace.clone(),
        mode: rollout.mode,
        outcomes,
        stopped,
    })
}

/// The rollout's progress, and how many of its pods were back before this batch.
struct Shown<'a> {
    progress: &'a Progress,
    back: usize,
}

/// One batch: send, then wait. `Ok(Ok(serving))` names the pod now in each slot.
async fn run_batch(
    ctx: &Context<'_>,
    rollout: &mut Rollout,
    names: &[String],
    restarted: &BTreeSet<String>,
    await_health: bool,
    shown: &Shown<'_>,
) -> anyhow::Result<Result<Vec<Option<String>>, Stop>> {
    let deadline = Instant::now() + ctx.timeout;
    let records: Vec<_> = rollout
        .pods
        .iter()
        .filter(|p| names.contains(&p.name))
        .cloned()
        .collect();
    for r in &records {
        rollout.set(&r.name, Step::Restarting);
    }
    JOURNAL
        .write(ctx.cluster, ROLLOUT, &Entry::Rollout(rollout.clone()))
        .await?;
    let pods = ctx.cluster.pods();
    for r in &records {
        // Re-read right before acting: a pod already replaced is left alone.
        let live = ctx.cluster.pod(&r.name).await?;
        let same = live
            .as_ref()
            .is_some_and(|p| p.metadata.uid.as_deref() == Some(r.uid.as_str()));
        let deleting = live
            .as_ref()
            .is_some_and(|p| p.metadata.deletion_timestamp.is_some());
        let sent = match rollout.mode {
            Mode::InPlace if !same => Err(format!(
                "pod/{} was replaced since it was selected; an in-place restart needs the same pod",
                r.name
            )),
            Mode::InPlace => restart_in_place(ctx, &r.name).await,
            _ if !same || deleting => Ok(()),
            Mode::Rolling => evict(ctx, &r.name, deadline).await,
            Mode::AllAtOnce => delete(ctx, &r.name, &r.uid).await,
        };
        if let Err(why) = sent {
            let blocked = rollout.mode == Mode::Rolling && why.contains("disruption budget");
            return Ok(Err(Stop {
                failed: vec![(r.name.clone(), why.clone())],
                why,
                blocked,
            }));
        }
    }
    drop(pods);
    let slots: Vec<Slot> = records
        .iter()
        .map(|r| Slot {
            name: r.name.clone(),
            uid: r.uid.clone(),
            owner: r.owner.clone(),
        })
        .collect();
    wait_batch(
        ctx,
        rollout.mode,
        &slots,
        restarted,
        deadline,
        await_health,
        shown,
    )
    .await
}

/// Evicts a pod; while a disruption budget refuses (429) it tries again until `deadline`, then
/// explains which budget and why.
async fn evict(ctx: &Context<'_>, name: &str, deadline: Instant) -> Result<(), String> {
    let api = ctx.cluster.pods();
    let mut told = false;
    let mut pause = Duration::from_millis(200);
    loop {
        match api.evict(name, &EvictParams::default()).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 429 => {
                let causes: Vec<String> = s
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .map(|c| c.message.clone())
                    .filter(|m| !m.is_empty())
                    .collect();
                let why = if causes.is_empty() {
                    s.message.clone()
                } else {
                    format!("{} {}", s.message, causes.join("; "))
                };
                if !told {
                    eprintln!("waiting: the eviction of pod/{name} is refused: {why}");
                    told = true;
                }
                if Instant::now() >= deadline {
                    let budget = diagnose::budget_for(ctx.cluster, name).await;
                    return Err(format!(
                        "pod/{name} was not evicted within {}s: its disruption budget allows no disruption now ({why}){budget}. Nothing was done to it: make the other pods of the budget Ready, or lower the budget, then run the same command again",
                        ctx.timeout.as_secs()
                    ));
                }
            }
            Err(e) if retryable(&e) && Instant::now() < deadline => {}
            Err(e) => return Err(format!("cannot evict pod/{name}: {}", describe(&e))),
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Deletes a pod, only if it is still the one selected (a uid precondition).
async fn delete(ctx: &Context<'_>, name: &str, uid: &str) -> Result<(), String> {
    let api = ctx.cluster.pods();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let mut attempts = 0;
    loop {
        match api.delete(name, &params).await {
            Ok(_) => return Ok(()),
            // Gone, or replaced since (the uid precondition fails with 409): nothing to do.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Ok(()),
            Err(e) if retryable(&e) && attempts < 5 => attempts += 1,
            Err(e) => return Err(format!("cannot delete pod/{name}: {}", describe(&e))),
        }
        tokio::time::sleep(Duration::from_millis(200 << attempts)).await;
    }
}

/// Runs the profile's restart command in the pod's container; it must exit 0.
async fn restart_in_place(ctx: &Context<'_>, name: &str) -> Result<(), String> {
    let Some(spec) = ctx.in_place else {
        return Err("in-place restarts need a profile with a restart command".into());
    };
    let api = ctx.cluster.pods();
    let cmd = upgrade_shared::exec::Command::new(name, Some(&spec.container), spec.command.clone())
        .timeout(Some(Duration::from_secs(60)));
    upgrade_shared::exec::capture(
        &api,
        &cmd,
        upgrade_shared::exec::Input::None,
        "the restart command",
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("{e}"))
}

/// Process groups of the profile's resources, and the health verdicts.
async fn application(
    ctx: &Context<'_>,
) -> anyhow::Result<(Vec<GroupFacts>, Vec<(String, Option<bool>)>)> {
    let client = &ctx.cluster.client;
    let ns = &ctx.cluster.namespace;
    let mut groups = Vec::new();
    if let Some(spec) = ctx.groups.filter(|_| !ctx.clear.is_empty()) {
        let k = &spec.custom_resource;
        for cr in custom_resources(client, ns, &k.api_version, &k.kind)
            .await?
            .unwrap_or_default()
        {
            groups.extend(facts::groups(&cr, spec));
        }
    }
    let mut health = Vec::new();
    if let Some(h) = ctx.health {
        let k = &h.custom_resource;
        for cr in custom_resources(client, ns, &k.api_version, &k.kind)
            .await?
            .unwrap_or_default()
        {
            let name = format!(
                "{}/{} {}",
                k.kind.to_lowercase(),
                cr["metadata"]["name"].as_str().unwrap_or_default(),
                h.field
            );
            health.push((name, facts::healthy(&cr, &h.field)));
        }
    }
    Ok((groups, health))
}

async fn wait_batch(
    ctx: &Context<'_>,
    mode: Mode,
    slots: &[Slot],
    restarted: &BTreeSet<String>,
    deadline: Instant,
    await_health: bool,
    shown: &Shown<'_>,
) -> anyhow::Result<Result<Vec<Option<String>>, Stop>> {
    let labels = ctx.groups.map(|g| GroupLabels {
        pod_label: g.pod_label.clone(),
        instance_label: g.instance_label.clone(),
    });
    // Pods are followed with a watch, as `kubectl rollout status` does, so a pod that becomes
    // Ready is seen at once; the profile's custom resources (process groups, health) are read
    // again on a growing pause.
    let mut changes = Changes::new(ctx.cluster.pods());
    let polls_application =
        ctx.health.is_some() || ctx.groups.is_some_and(|_| !ctx.clear.is_empty());
    let mut pause = Duration::from_millis(100);
    loop {
        let (pods, version): (Vec<Pod>, String) = list_versioned(
            ctx.cluster.pods(),
            Default::default(),
            "pods",
            &ctx.cluster.namespace,
        )
        .await?;
        let now: Vec<PodFacts> = pods.iter().map(facts::pod).collect();
        let serving = slots::fill(slots, &now, restarted, mode);
        let (groups, health) = application(ctx).await?;
        let mut waiting: Vec<(String, String)> = Vec::new();
        for (slot, s) in slots.iter().zip(&serving) {
            match s {
                None => waiting.push((slot.name.clone(), String::new())),
                Some(name) => {
                    let pod = now.iter().find(|p| &p.name == name);
                    let group = pod
                        .zip(labels.as_ref())
                        .and_then(|(p, l)| l.group_of(p, &groups));
                    if let Some(g) = group {
                        let left: Vec<&String> = g
                            .conditions
                            .iter()
                            .filter(|c| ctx.clear.contains(c))
                            .collect();
                        if !left.is_empty() {
                            let list: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
                            waiting.push((
                                slot.name.clone(),
                                format!("process group {} still has {}", g.id, list.join(", ")),
                            ));
                        }
                    }
                }
            }
        }
        // A slot counts as back once a Ready pod serves it and its process group is clear.
        let back = serving
            .iter()
            .zip(slots)
            .filter(|(s, slot)| s.is_some() && !waiting.iter().any(|(n, _)| n == &slot.name))
            .count();
        shown.progress.set((shown.back + back) as u64);
        let unhealthy: Vec<String> = health
            .iter()
            .filter(|_| await_health)
            .filter(|(_, ok)| *ok != Some(true))
            .map(|(name, ok)| match ok {
                None => format!("{name} is not set"),
                Some(_) => format!("{name} is not true"),
            })
            .collect();
        if waiting.is_empty() && unhealthy.is_empty() {
            return Ok(Ok(serving));
        }
        if Instant::now() >= deadline {
            let mut failed = Vec::new();
            let mut story = Vec::new();
            for (name, detail) in &waiting {
                let slot = slots.iter().find(|s| &s.name == name).cloned();
                let text = if detail.is_empty() {
                    match slot
                        .as_ref()
                        .and_then(|s| slots::culprit(s, &now, restarted))
                    {
                        Some(p) => {
                            let live = pods
                                .iter()
                                .find(|x| x.metadata.name.as_deref() == Some(p.name.as_str()));
                            diagnose::not_ready(ctx.cluster, &p.name, live).await
                        }
                        None => format!(
                            "no pod took the place of pod/{name}{}",
                            slot.and_then(|s| s.owner)
                                .map(|o| format!(" (its controller {o} did not create one)"))
                                .unwrap_or_default()
                        ),
                    }
                } else {
                    detail.clone()
                };
                failed.push((name.clone(), text.clone()));
                story.push(text);
            }
            if !unhealthy.is_empty() {
                let text = format!("the application is not healthy: {}", unhealthy.join(", "));
                if failed.is_empty() {
                    for s in slots {
                        failed.push((s.name.clone(), text.clone()));
                    }
                }
                story.push(text);
            }
            return Ok(Err(Stop {
                failed,
                why: format!(
                    "after {}s: {}. The rollout stops here; run the same command again to go on once it is fixed",
                    ctx.timeout.as_secs(),
                    story.join("; ")
                ),
                blocked: false,
            }));
        }
        let within = if polls_application {
            pause
        } else {
            Duration::from_secs(2)
        };
        changes
            .next(
                &version,
                within.min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
