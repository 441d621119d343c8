//! `pods`: check the input, read the namespace's pods, the profile's process groups and the
//! journal, select (or go on with the recorded rollout), check every pod can come back, print
//! the plan, ask, run it, and print every pod's outcome.

use std::time::{Duration, Instant};
use upgrade_shared::exit;
use upgrade_shared::list::{custom_resources, list_all};
use upgrade_shared::names::{check_name, parse_selector};
use upgrade_shared::output::{self, Format};

use upgrade_shared::profile::{ProcessGroups, Profile, VersionSource, builtin};
use upgrade_shared::progress::Progress;
use upgrade_shared::prompt;
use upgrade_shared::version::Version;

use super::{Entry, JOURNAL, ROLLOUT, connect};
use crate::facts;
use crate::plan::{Mode, Resumption, Rollout, new_rollout, resumption};
use crate::render;
use crate::rollout::{Context, execute};
use crate::select::{
    GroupFacts, GroupLabels, PodFacts, Selected, Selectors, pod_condition, select,
};
use crate::{Args, PodsArgs};

/// The arguments checked before anything is read: one clear line and exit 2 otherwise.
struct Input {
    selectors: Selectors,
    profile: Option<Profile>,
}

fn input(p: &PodsArgs) -> anyhow::Result<Input> {
    for n in &p.names {
        check_name("pod", n).map_err(anyhow::Error::msg)?;
    }
    let conditions = p
        .conditions
        .iter()
        .map(|c| pod_condition(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    for c in &p.process_conditions {
        if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            anyhow::bail!(
                "--process-condition {c:?}: a condition type is a word like MissingProcesses"
            );
        }
    }
    let label = match &p.selector {
        Some(text) => Some((
            text.clone(),
            parse_selector(text).map_err(|e| anyhow::anyhow!("-l: {e}"))?,
        )),
        None => None,
    };
    let not_version = match &p.not_version {
        Some(v) => Some(Version::parse(v).map_err(|e| anyhow::anyhow!("--not-version: {e}"))?),
        None => None,
    };
    let profile = match (&p.profile, &p.profile_file) {
        (Some(name), _) => Some(builtin(name)?),
        (None, Some(path)) => Some(Profile::from_file(path)?),
        (None, None) => None,
    };
    let restart = profile.as_ref().and_then(|pr| pr.restart.as_ref());
    if p.mode == Mode::InPlace && restart.and_then(|r| r.in_place.as_ref()).is_none() {
        anyhow::bail!(
            "--mode in-place runs the profile's restart command: pass a profile that has one (e.g. --profile foundationdb)"
        );
    }
    let version_container = profile.as_ref().and_then(|pr| {
        pr.version_sources.iter().find_map(|s| match s {
            VersionSource::Image { container, .. } => container.clone(),
            _ => None,
        })
    });
    Ok(Input {
        selectors: Selectors {
            all: p.all,
            names: p.names.clone(),
            label,
            conditions,
            process_conditions: p.process_conditions.clone(),
            not_version,
            version_container,
        },
        profile,
    })
}

/// The rollout's fingerprint: the selectors and the mode.
fn fingerprint(p: &PodsArgs, s: &Selectors) -> String {
    format!("{} --mode {}", s.describe(), p.mode.as_str())
}

pub async fn run(args: &Args, p: &PodsArgs) -> anyhow::Result<u8> {
    let input = input(p)?;
    if input.selectors.is_empty() {
        anyhow::bail!(crate::select::SelectError::NoSelector);
    }
    let cluster = connect(args).await?;
    let ns = cluster.namespace.clone();
    let restart = input.profile.as_ref().and_then(|pr| pr.restart.clone());
    let group_spec = restart.as_ref().and_then(|r| r.process_groups.clone());
    let pods = list_all(cluster.pods(), "pods", &ns).await?;
    let facts: Vec<PodFacts> = pods.iter().map(facts::pod).collect();
    let mut notes = Vec::new();
    let mut groups: Vec<GroupFacts> = Vec::new();
    if let Some(spec) = &group_spec {
        let by_condition = !input.selectors.process_conditions.is_empty();
        match read_groups(&cluster, spec, by_condition, args).await? {
            Some(found) => groups = found,
            None => notes.push(format!(
                "the cluster does not serve {} ({}): no process groups",
                spec.custom_resource.kind, spec.custom_resource.api_version
            )),
        }
    }
    let labels = group_spec.as_ref().map(|g| GroupLabels {
        pod_label: g.pod_label.clone(),
        instance_label: g.instance_label.clone(),
    });
    let recorded = match JOURNAL.get(&cluster, ROLLOUT).await? {
        Some(Entry::Rollout(r)) => Some(r),
        _ => None,
    };
    let print = fingerprint(p, &input.selectors);
    let (mut rollout, selected): (Rollout, Vec<Selected>) = match resumption(recorded, &print) {
        Resumption::Fresh => {
            let selection = match select(&ns, &facts, &groups, labels.as_ref(), &input.selectors) {
                Err(empty @ crate::select::SelectError::Empty { .. }) if p.if_any => {
                    return nothing_to_restart(args, &ns, p.mode, &empty.to_string());
                }
                other => other?,
            };
            notes.extend(selection.notes.iter().cloned());
            let r = new_rollout(print, &selection.pods, p.mode, p.max_unavailable as usize);
            (r, selection.pods)
        }
        Resumption::GoOn(r) => (r, Vec::new()),
        Resumption::Conflict(r) => {
            eprintln!(
                "error: an unfinished rollout is recorded in configmap/{} in {ns} ({} of {} pods done): `{}`. Run that command again to finish it first; nothing was changed",
                crate::JOURNAL,
                r.done(),
                r.pods.len(),
                r.selection
            );
            return Ok(exit::FINDINGS);
        }
    };
    // Every pod must be able to come back before the first one goes.
    let refusals: Vec<String> = rollout
        .pods
        .iter()
        .filter(|r| r.step == crate::plan::Step::Pending)
        .filter_map(|r| {
            let f = facts.iter().find(|f| f.name == r.name)?;
            let operated = labels.as_ref().is_some_and(|l| l.group_of(f, &groups).is_some());
            let container = restart.as_ref().and_then(|x| x.in_place.as_ref()).map(|i| i.container.clone());
            match p.mode {
                Mode::InPlace => {
                    let c = container.unwrap_or_default();
                    (!f.images.iter().any(|(n, _)| n == &c))
                        .then(|| format!("pod/{} has no container {c} to restart in place", f.name))
                }
                _ if f.controller.is_none() && !operated => Some(format!(
                    "pod/{} has no controller and no operator's process group: deleted, nothing would bring it back",
                    f.name
                )),
                _ => None,
            }
        })
        .collect();
    let health = restart.as_ref().and_then(|r| r.health.clone());
    let in_place = restart.as_ref().and_then(|r| r.in_place.clone());
    let health_text = health
        .as_ref()
        .map(|h| format!("{} {}", h.custom_resource.kind.to_lowercase(), h.field));
    let in_place_text = in_place
        .as_ref()
        .map(|i| format!("`{}` in container {}", i.command.join(" "), i.container));
    let styles = args.output.styles();
    if args.output.format == Format::Table {
        output::print(&render::rollout_plan(
            &ns,
            &rollout,
            &selected,
            &notes,
            health_text.as_deref(),
            in_place_text.as_deref(),
            &styles,
        ))?;
    }
    if !refusals.is_empty() {
        for r in &refusals {
            eprintln!("error: {r}");
        }
        eprintln!("error: nothing was restarted");
        return Ok(exit::FINDINGS);
    }
    if args.dry_run() {
        if args.output.format != Format::Table {
            output::print(&output::to_document(&rollout, args.output.format)?)?;
        }
        return Ok(exit::OK);
    }
    let question = format!(
        "Restart {} pod(s) in {ns} ({})?",
        rollout.pods.len() - rollout.done(),
        p.mode.as_str()
    );
    if !prompt::confirm(&question, args.yes)? {
        eprintln!("nothing was restarted");
        return Ok(exit::FINDINGS);
    }
    JOURNAL
        .write(&cluster, ROLLOUT, &Entry::Rollout(rollout.clone()))
        .await?;
    let clear: Vec<String> = input.selectors.process_conditions.clone();
    let ctx = Context {
        cluster: &cluster,
        timeout: args.timeout(),
        health: health.as_ref(),
        in_place: in_place.as_ref(),
        groups: group_spec.as_ref(),
        clear: &clear,
        format: args.output.format,
    };
    let report = execute(&ctx, &mut rollout).await?;
    match args.output.format {
        Format::Table => output::print(&render::outcomes(&report, &styles))?,
        f => output::print(&output::to_document(&report, f)?)?,
    }
    match &report.stopped {
        Some(why) => {
            eprintln!("error: {why}");
            Ok(exit::FINDINGS)
        }
        None => Ok(exit::OK),
    }
}

/// The process groups of every resource of the profile's kind in the namespace; `None` when
/// the cluster does not serve the kind. Selecting by condition needs groups that speak for the
/// current spec: the kind must be served and have resources with groups (bad input otherwise,
/// `--if-any` or not: a wrong namespace or context is not "nothing to restart"), and with the
/// profile's `generations` it waits, up to --timeout, until the operator acted on every
/// resource's current generation, as it sets the conditions only then.
async fn read_groups(
    cluster: &upgrade_shared::cluster::Cluster,
    spec: &ProcessGroups,
    by_condition: bool,
    args: &Args,
) -> anyhow::Result<Option<Vec<GroupFacts>>> {
    let ns = &cluster.namespace;
    let k = &spec.custom_resource;
    let kind = k.kind.to_lowercase();
    let read = || custom_resources(&cluster.client, ns, &k.api_version, &k.kind);
    let Some(mut list) = read().await? else {
        if by_condition {
            anyhow::bail!(
                "--process-condition: the cluster does not serve {} ({}), so there are no process groups to select (wrong --context?)",
                k.kind,
                k.api_version
            );
        }
        return Ok(None);
    };
    if by_condition {
        if list.is_empty() {
            anyhow::bail!(
                "--process-condition: no {} in namespace {ns}, so there are no process groups to select (wrong -n or --context?)",
                k.kind
            );
        }
        if let Some(path) = &spec.generations {
            let behind = |list: &[serde_json::Value]| -> Vec<String> {
                list.iter()
                    .filter_map(|cr| {
                        let o = facts::observed(cr, path);
                        (!o.current()).then(|| {
                            format!(
                                "{kind}/{} generation {} ({path}: {})",
                                cr["metadata"]["name"].as_str().unwrap_or_default(),
                                o.generation,
                                o.newest
                                    .map_or("none".to_string(), |n| format!("newest {n}"))
                            )
                        })
                    })
                    .collect()
            };
            let mut waiting = behind(&list);
            if !waiting.is_empty() {
                let total = list.len() as u64;
                let progress = Progress::items(
                    &format!(
                        "waiting for the operator to act on the current spec of {kind} in {ns}"
                    ),
                    Some(total),
                    "resources",
                    args.output.format,
                );
                progress.println(&format!(
                    "waiting (up to --timeout) for the operator to act on the current spec before selecting by condition: {}",
                    waiting.join(", ")
                ));
                let deadline = Instant::now() + args.timeout();
                let mut pause = Duration::from_millis(200);
                while !waiting.is_empty() {
                    progress.set(total.saturating_sub(waiting.len() as u64));
                    if Instant::now() >= deadline {
                        progress.finish();
                        anyhow::bail!(
                            "timed out after {}s waiting for the operator to act on the current spec ({}); its process groups' conditions may still be those of the old spec, nothing was restarted",
                            args.timeout().as_secs(),
                            waiting.join(", ")
                        );
                    }
                    tokio::time::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                    list = read().await?.unwrap_or_default();
                    waiting = behind(&list);
                }
                progress.set(total);
                progress.finish();
                eprintln!("the operator acted on the current spec of every {kind} in {ns}");
            }
        }
    }
    let groups: Vec<GroupFacts> = list.iter().flat_map(|cr| facts::groups(cr, spec)).collect();
    if by_condition && groups.is_empty() {
        anyhow::bail!(
            "--process-condition: no {} in namespace {ns} lists process groups ({}): nothing to select by condition",
            k.kind,
            spec.list
        );
    }
    Ok(Some(groups))
}

/// `--if-any` with an empty selection: the reason on its own line (an empty report for
/// `-o json|yaml`), nothing asked, nothing written, exit 0.
fn nothing_to_restart(args: &Args, ns: &str, mode: Mode, why: &str) -> anyhow::Result<u8> {
    match args.output.format {
        Format::Table => println!("{why}"),
        f => {
            eprintln!("{why}");
            let report = render::Report {
                namespace: ns.to_string(),
                mode,
                outcomes: Vec::new(),
                stopped: None,
            };
            output::print(&output::to_document(&report, f)?)?;
        }
    }
    Ok(exit::OK)
}
