//! `adopt`: hand the volumes behind old claims to new claims without copying — one pair as
//! `OLD NEW`, or several as `OLD=NEW …`. Every pair is planned and checked before the first
//! change; then the pairs are carried out in parallel (each journalled as a single adoption
//! is, so a re-run after a kill resumes every pair and `rollback NEW` undoes one) and their
//! bindings are waited for once: a real controller-manager's volume binder resyncs every 15 s,
//! so adoptions one after another wait for one period each.
//!
//! Freeing the claims: with `--quiesce`, the owners of the pods that mount them are scaled to
//! zero as the plan's first steps; without it, pods already on their way out (terminating, or
//! owned by a workload at zero replicas — right after `kubectl scale --replicas=0`) are waited
//! for within `--timeout`, and any other pod refuses the adoption.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::ListParams;
use serde::Serialize;
use upgrade_shared::cluster::{self, Cluster};
use upgrade_shared::output::{self, Format, Styles};
use upgrade_shared::scale::{self, Replicas};
use upgrade_shared::{exit, names, prompt};

use crate::journal::{self, Entry};
use crate::plan::{self, Action, AdoptRecord, Plan, PlanError};
use crate::render::StepOutcome;
use crate::{Args, DryRun, execute, statefulset};

/// One adoption: the volume behind `old` goes to `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.old, self.new)
    }
}

/// The pairs the arguments name: `OLD NEW` (one pair), or `OLD=NEW` for each pair. Names are
/// validated, and a claim may appear in one pair only (as OLD or as NEW). Pure.
pub fn parse_pairs(words: &[String]) -> anyhow::Result<Vec<Pair>> {
    let pairs: Vec<Pair> = match words {
        [old, new] if !old.contains('=') && !new.contains('=') => vec![Pair {
            old: old.clone(),
            new: new.clone(),
        }],
        _ => words
            .iter()
            .map(|w| match w.split_once('=') {
                Some((old, new)) if !old.is_empty() && !new.is_empty() && !new.contains('=') => {
                    Ok(Pair {
                        old: old.into(),
                        new: new.into(),
                    })
                }
                _ => Err(anyhow::anyhow!(
                    "{w:?} is not a pair OLD=NEW: give one pair as OLD NEW, or each pair as OLD=NEW"
                )),
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if pairs.is_empty() {
        anyhow::bail!("name the claims to adopt: OLD NEW, or OLD=NEW pairs");
    }
    let mut seen: BTreeMap<&str, &Pair> = BTreeMap::new();
    for p in &pairs {
        for claim in [&p.old, &p.new] {
            names::check_name("claim", claim).map_err(anyhow::Error::msg)?;
        }
        if p.old == p.new {
            if pairs.len() == 1 {
                anyhow::bail!("OLD_CLAIM and NEW_CLAIM are the same claim");
            }
            anyhow::bail!("{p}: OLD and NEW are the same claim");
        }
        for claim in [&p.old, &p.new] {
            if let Some(other) = seen.insert(claim, p) {
                anyhow::bail!(
                    "pvc/{claim} is named by two pairs ({other} and {p}): a claim can be in one pair only"
                );
            }
        }
    }
    Ok(pairs)
}

/// With `quiesce`, the owners to scale down (and their replicas). Otherwise waits for the pods
/// that are stopping anyway, and returns no owners.
pub async fn stop_users(
    args: &Args,
    cluster: &Cluster,
    claim: &str,
    quiesce: bool,
) -> anyhow::Result<Replicas> {
    let pods = cluster.pods_mounting(claim).await?;
    if pods.is_empty() {
        return Ok(Replicas::new());
    }
    if quiesce {
        return scale::owners_of(cluster, &pods)
            .await
            .map_err(|e| e.context(format!("cannot quiesce the pods that mount pvc/{claim}")));
    }
    let mut going = Vec::new();
    for pod in &pods {
        if !scale::stopping(cluster, pod).await? {
            // Someone else's running pod: the plan refuses and names it.
            return Ok(Replicas::new());
        }
        going.extend(pod.metadata.name.clone());
    }
    if args.dry_run != DryRun::None {
        return Ok(Replicas::new());
    }
    let timeout = args.timeouts().bind;
    if args.output.format == Format::Table {
        eprintln!(
            "waiting up to {}s for {} to terminate (stopping: being deleted, or the owner is at 0 replicas)",
            timeout.as_secs(),
            going
                .iter()
                .map(|p| format!("pod/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    scale::wait_pods_gone(cluster, &going, timeout).await?;
    Ok(Replicas::new())
}

/// The scale-down steps for these owners, then the waits for the claims to be free.
fn quiesce_steps<'a>(owners: &Replicas, claims: impl IntoIterator<Item = &'a str>) -> Vec<Action> {
    let mut steps: Vec<Action> = owners
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(owner, n)| Action::Scale {
            owner: owner.clone(),
            from: *n,
            to: 0,
        })
        .collect();
    steps.extend(claims.into_iter().map(|claim| Action::WaitUnmounted {
        claim: claim.into(),
    }));
    steps
}

/// Puts the scale-down steps, and the wait for the claim to be free, before the adoption's.
pub fn prepend_quiesce(plan: &mut Plan, owners: &Replicas, claim: &str) {
    if owners.is_empty() {
        return;
    }
    let mut steps = quiesce_steps(owners, [claim]);
    steps.append(&mut plan.steps);
    plan.steps = steps;
}

/// One pair's plan and what its journal entry records.
pub struct PairPlan {
    pub pair: Pair,
    pub plan: Plan,
    pub record: AdoptRecord,
    /// Owners to scale down in this run (`--quiesce`).
    pub owners: Replicas,
    /// Every owner scaled down for this pair, by this run or an earlier one (for rollback).
    pub quiesced: Replicas,
    /// The pair's state in the journal before this run.
    pub journalled: Option<String>,
}

impl PairPlan {
    fn key(&self) -> String {
        journal::adopt_key(&self.pair.new)
    }

    fn entry(&self, state: &str) -> Entry {
        Entry::Adopt {
            record: self.record.clone(),
            state: state.into(),
            quiesced: self.quiesced.clone(),
        }
    }
}

/// Plans one pair from the cluster as it is now and the journal, and checks NEW against the
/// StatefulSets: nothing is changed.
async fn plan_pair(
    args: &Args,
    cluster: &Cluster,
    entries: &BTreeMap<String, Entry>,
    pair: &Pair,
    quiesce: bool,
    sets: &[StatefulSet],
) -> anyhow::Result<PairPlan> {
    let (record, mut quiesced, journalled) = match entries.get(&journal::adopt_key(&pair.new)) {
        Some(Entry::Adopt {
            record,
            quiesced,
            state,
        }) if record.old_claim == pair.old => {
            (Some(record.clone()), quiesced.clone(), Some(state.clone()))
        }
        _ => (None, Replicas::new(), None),
    };
    let owners = stop_users(args, cluster, &pair.old, quiesce).await?;
    let mut state = crate::adopt_state(cluster, &pair.old, &pair.new, record).await?;
    if quiesce {
        // Their owners are scaled to zero first, then the claim is free.
        state.users.clear();
    }
    let (mut plan, record) = plan::adopt(&state, &pair.old, &pair.new)?;
    for (owner, replicas) in &owners {
        quiesced.entry(owner.clone()).or_insert(*replicas);
    }
    if !sets.is_empty() {
        let volume = state
            .volume
            .clone()
            .ok_or_else(|| anyhow::anyhow!("pv/{} not found", record.volume))?;
        // The StatefulSet whose template makes a claim of NEW's name; with none, every one
        // says why not.
        let fits: Vec<statefulset::Fit> =
            match sets.iter().find(|s| statefulset::owns(s, &pair.new)) {
                Some(sts) => vec![statefulset::check(sts, &pair.new, &volume)],
                None => sets
                    .iter()
                    .map(|sts| statefulset::check(sts, &pair.new, &volume))
                    .collect(),
            };
        let mut errors = Vec::new();
        for fit in fits {
            plan.warnings.extend(fit.warnings);
            errors.extend(fit.errors);
        }
        if !errors.is_empty() {
            return Err(PlanError::Refused(errors.join("; ")).into());
        }
    }
    Ok(PairPlan {
        pair: pair.clone(),
        plan,
        record,
        owners,
        quiesced,
        journalled,
    })
}

/// Finds every StatefulSet named, in the manifests or else on the cluster.
async fn statefulsets(
    cluster: &Cluster,
    names_: &[String],
    manifests: &[PathBuf],
) -> anyhow::Result<Vec<StatefulSet>> {
    let mut sets = Vec::new();
    for name in names_ {
        names::check_name("statefulset", name).map_err(anyhow::Error::msg)?;
        sets.push(crate::find_statefulset(cluster, name, manifests).await?);
    }
    Ok(sets)
}

/// `kubectl upgrade-migrate-pv adopt`: plans every pair, then carries one pair out as it
/// always did, or several in parallel.
pub async fn run(
    args: &Args,
    words: &[String],
    for_statefulset: &[String],
    manifests: &[PathBuf],
    quiesce: bool,
) -> anyhow::Result<u8> {
    let pairs = parse_pairs(words)?;
    for name in for_statefulset {
        names::check_name("statefulset", name).map_err(anyhow::Error::msg)?;
    }
    let cluster = crate::connect(args).await?;
    let entries = journal::JOURNAL.read(&cluster).await?;
    let sets = statefulsets(&cluster, for_statefulset, manifests).await?;
    if let [pair] = pairs.as_slice() {
        return run_one(
            args,
            &cluster,
            plan_pair(args, &cluster, &entries, pair, quiesce, &sets).await?,
        )
        .await;
    }
    let mut planned = Vec::new();
    let mut errors = Vec::new();
    for pair in &pairs {
        match plan_pair(args, &cluster, &entries, pair, quiesce, &sets).await {
            Ok(p) => planned.push(p),
            Err(e) => errors.push((pair, e)),
        }
    }
    if !errors.is_empty() {
        return Err(refusal(&pairs, errors));
    }
    run_many(args, &cluster, planned).await
}

/// One error for the pairs that cannot be planned; nothing was changed. A safety rule's
/// refusal exits 1 only when every problem is one; any bad input makes it 2.
fn refusal(pairs: &[Pair], mut errors: Vec<(&Pair, anyhow::Error)>) -> anyhow::Error {
    let what = format!(
        "nothing was changed: every pair is checked before the first change, and {} of {} cannot be adopted",
        errors.len(),
        pairs.len()
    );
    if errors.len() == 1 {
        let (pair, e) = errors.remove(0);
        return e.context(format!("{pair}")).context(what);
    }
    let all_refusals = errors
        .iter()
        .all(|(_, e)| crate::exit_code(e) == exit::FINDINGS);
    let text = format!(
        "{what}: {}",
        errors
            .iter()
            .map(|(pair, e)| format!("{pair}: {}", exit::one_line(e)))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if all_refusals {
        exit::refused(text)
    } else {
        anyhow::Error::msg(text)
    }
}

/// One pair, carried out exactly as a single adoption always was.
async fn run_one(args: &Args, cluster: &Cluster, mut one: PairPlan) -> anyhow::Result<u8> {
    prepend_quiesce(&mut one.plan, &one.owners, &one.pair.old);
    let key = one.key();
    let started = one.entry("started");
    let result = crate::carry_out(args, cluster, &one.plan, async || {
        journal::JOURNAL.write(cluster, &key, &started).await
    })
    .await?;
    // Done when this run took the steps, or found a journalled adoption already complete (a
    // run stopped while it waited for the binding, and the binder finished it meanwhile).
    let finished = !one.plan.steps.is_empty() || one.journalled.as_deref() == Some("started");
    if args.dry_run == DryRun::None && finished {
        journal::JOURNAL
            .write(cluster, &key, &one.entry("done"))
            .await?;
    }
    Ok(result)
}

/// What became of one pair.
#[derive(Debug, Default)]
struct PairRun {
    /// Steps taken (the failed one included).
    attempted: usize,
    error: Option<String>,
    /// Exit code of the failure.
    code: u8,
}

impl PairRun {
    fn failed(&mut self, e: &anyhow::Error) {
        self.error = Some(exit::one_line(e));
        self.code = crate::exit_code(e);
    }
}

/// Several pairs: the quiesce steps of all of them first, then every pair's steps in
/// parallel, then one wait for all the bindings.
async fn run_many(args: &Args, cluster: &Cluster, pairs: Vec<PairPlan>) -> anyhow::Result<u8> {
    let styles = args.output.styles();
    let dry_run = args.dry_run != DryRun::None;
    let mut owners = Replicas::new();
    for p in &pairs {
        for (owner, n) in &p.owners {
            owners.entry(owner.clone()).or_insert(*n);
        }
    }
    let freed = pairs
        .iter()
        .filter(|p| !p.owners.is_empty())
        .map(|p| p.pair.old.as_str());
    let prepare = Plan {
        command: "quiesce".into(),
        namespace: cluster.namespace.clone(),
        steps: if owners.is_empty() {
            Vec::new()
        } else {
            quiesce_steps(&owners, freed)
        },
        ..Plan::default()
    };
    let nothing = prepare.steps.is_empty() && pairs.iter().all(|p| p.plan.steps.is_empty());
    match args.output.format {
        Format::Table => {
            output::print(&render_plan(&cluster.namespace, &prepare, &pairs, &styles))?
        }
        format if dry_run || nothing => {
            let runs: Vec<PairRun> = pairs.iter().map(|_| PairRun::default()).collect();
            output::print(&output::to_document(
                &outcome(
                    &cluster.namespace,
                    &prepare,
                    &pairs,
                    &runs,
                    Stage::Planned,
                    dry_run,
                ),
                format,
            )?)?
        }
        _ => {}
    }
    let mut runs: Vec<PairRun> = pairs.iter().map(|_| PairRun::default()).collect();
    if dry_run || nothing {
        // Pairs found complete stay recorded as done (a kill may have come after the binding).
        if !dry_run {
            journal_done(cluster, &pairs, &runs).await?;
        }
        return Ok(exit::OK);
    }
    let destructive = prepare.destructive() || pairs.iter().any(|p| p.plan.destructive());
    if destructive && !prompt::confirm("Carry out these steps?", args.yes)? {
        return Err(exit::refused("stopped: nothing was changed"));
    }
    let quiet = args.output.format != Format::Table;
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let started: Vec<(String, Entry)> = pairs
        .iter()
        .filter(|p| !p.plan.steps.is_empty())
        .map(|p| (p.key(), p.entry("started")))
        .collect();
    journal::JOURNAL.write_all(cluster, &started).await?;
    let timeouts = args.timeouts();
    let deadline = Instant::now() + timeouts.bind;
    if !prepare.steps.is_empty() {
        execute::run(cluster, &prepare, timeouts, &|line| {
            say(&format!("quiesce: {line}"))
        })
        .await?;
    }
    // Every pair up to its binding, in parallel: each step checks live state before it acts,
    // as in a single adoption.
    let work = futures::future::join_all(pairs.iter().zip(runs.iter_mut()).map(|(p, run)| {
        let (say, styles) = (&say, &styles);
        async move {
            let steps = Plan {
                steps: until_bound(&p.plan).to_vec(),
                ..p.plan.clone()
            };
            if steps.steps.is_empty() {
                return;
            }
            let attempted = Cell::new(0);
            let label = format!("{}", p.pair);
            let result = execute::run(cluster, &steps, timeouts, &|line| {
                attempted.set(attempted.get() + 1);
                say(&format!("{label}: {line}"));
            })
            .await;
            run.attempted = attempted.get();
            if let Err(e) = result {
                run.failed(&e);
                say(&format!(
                    "{label}: {}",
                    styles.bad(&format!("failed: {}", exit::one_line(&e)))
                ));
            }
        }
    }));
    work.await;
    wait_bound(cluster, &pairs, &mut runs, deadline, &say).await;
    journal_done(cluster, &pairs, &runs).await?;
    let failed: Vec<&PairRun> = runs.iter().filter(|r| r.error.is_some()).collect();
    match args.output.format {
        Format::Table => {
            output::print(&render_results(&pairs, &runs, &styles))?;
            if failed.is_empty() {
                eprintln!("{}", styles.good("done"));
            }
        }
        format => output::print(&output::to_document(
            &outcome(
                &cluster.namespace,
                &prepare,
                &pairs,
                &runs,
                Stage::Ran,
                false,
            ),
            format,
        )?)?,
    }
    if failed.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "error: {} of {} pairs did not complete (the others did); run the same command again to continue them, or `kubectl upgrade-migrate-pv status -n {}`",
        failed.len(),
        pairs.len(),
        cluster.namespace
    );
    Ok(if failed.iter().all(|r| r.code == exit::FINDINGS) {
        exit::FINDINGS
    } else {
        exit::ERROR
    })
}

/// A plan's steps before its wait for the binding (the last step of an adoption).
fn until_bound(plan: &Plan) -> &[Action] {
    match plan.steps.split_last() {
        Some((Action::WaitBound { .. }, rest)) => rest,
        _ => &plan.steps,
    }
}

fn wait_step(plan: &Plan) -> Option<(&str, &str)> {
    match plan.steps.last() {
        Some(Action::WaitBound { claim, volume }) => Some((claim, volume)),
        _ => None,
    }
}

/// Waits once for every pair whose steps went through to be Bound to its volume: one list of
/// the namespace's claims per poll, until `deadline`. A pair still unbound then fails alone.
async fn wait_bound(
    cluster: &Cluster,
    pairs: &[PairPlan],
    runs: &mut [PairRun],
    deadline: Instant,
    say: &dyn Fn(&str),
) {
    let mut pending: BTreeMap<usize, (&str, &str)> = pairs
        .iter()
        .enumerate()
        .filter(|(i, _)| runs[*i].error.is_none())
        .filter_map(|(i, p)| wait_step(&p.plan).map(|w| (i, w)))
        .collect();
    if pending.is_empty() {
        return;
    }
    say(&format!(
        "waiting up to {}s for {} claim{} to be Bound (the volume binder binds a pre-bound claim on its next resync: 15 s on a real cluster)",
        deadline.saturating_duration_since(Instant::now()).as_secs(),
        pending.len(),
        if pending.len() == 1 { "" } else { "s" }
    ));
    let api = cluster.claims();
    let every = ListParams::default();
    let mut pause = Duration::from_millis(200);
    loop {
        let listed = cluster::retry("cannot list the claims", || api.list(&every)).await;
        let claims = match listed {
            Ok(list) => list.items,
            Err(e) => {
                for (i, _) in std::mem::take(&mut pending) {
                    runs[i].attempted += 1;
                    runs[i].failed(&e);
                }
                return;
            }
        };
        let bound: BTreeSet<(String, String)> = claims
            .iter()
            .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
            .filter_map(|c| {
                Some((
                    c.metadata.name.clone()?,
                    c.spec.as_ref()?.volume_name.clone()?,
                ))
            })
            .collect();
        pending.retain(|i, (claim, volume)| {
            let done = bound.contains(&(claim.to_string(), volume.to_string()));
            if done {
                runs[*i].attempted += 1;
                say(&format!(
                    "{}: pvc/{claim} is Bound to pv/{volume}",
                    pairs[*i].pair
                ));
            }
            !done
        });
        if pending.is_empty() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            for (i, (claim, volume)) in std::mem::take(&mut pending) {
                runs[i].attempted += 1;
                runs[i].failed(&anyhow::anyhow!(
                    "timed out waiting for pvc/{claim} to be Bound to pv/{volume}; what came before is done and recorded — run the same command again to continue"
                ));
            }
            return;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// Records as done every pair that completed in this run, or that was found complete.
async fn journal_done(
    cluster: &Cluster,
    pairs: &[PairPlan],
    runs: &[PairRun],
) -> anyhow::Result<()> {
    let done: Vec<(String, Entry)> = pairs
        .iter()
        .zip(runs)
        .filter(|(p, run)| {
            run.error.is_none()
                && (!p.plan.steps.is_empty() || p.journalled.as_deref() == Some("started"))
        })
        .map(|(p, _)| (p.key(), p.entry("done")))
        .collect();
    journal::JOURNAL.write_all(cluster, &done).await
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Planned,
    Ran,
}

/// The plan of several pairs, for `-o table`: the quiesce steps, then each pair's.
fn render_plan(namespace: &str, prepare: &Plan, pairs: &[PairPlan], styles: &Styles) -> String {
    let mut out = format!(
        "{} adopt {} pairs in namespace {namespace} (in parallel; the bindings are waited for together)\n",
        styles.heading("Plan:"),
        pairs.len()
    );
    let mut list = |title: String, plan: &Plan| {
        out.push_str(&format!("{title}\n"));
        for d in &plan.done {
            out.push_str(&format!("  {} {d}\n", styles.dim("already done:")));
        }
        if plan.steps.is_empty() && plan.done.is_empty() {
            out.push_str(&format!("  {}\n", styles.good("nothing to do")));
        }
        crate::render::steps_and_warnings(&mut out, plan, styles);
    };
    if !prepare.steps.is_empty() {
        list("first, for every pair:".into(), prepare);
    }
    for p in pairs {
        list(format!("pvc/{} → pvc/{}:", p.pair.old, p.pair.new), &p.plan);
    }
    out
}

/// What became of every pair, for `-o table`.
fn render_results(pairs: &[PairPlan], runs: &[PairRun], styles: &Styles) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .zip(runs)
        .map(|(p, run)| {
            vec![
                p.pair.old.clone(),
                p.pair.new.clone(),
                p.record.volume.clone(),
                pair_outcome(p, run, Stage::Ran).into(),
                run.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    output::table(
        &["old claim", "new claim", "volume", "outcome", "detail"],
        &rows,
        |col, c| match (col, c) {
            (3, "failed") => styles.bad(c),
            (3, _) => styles.good(c),
            _ => c.to_string(),
        },
    )
}

fn pair_outcome(p: &PairPlan, run: &PairRun, stage: Stage) -> &'static str {
    match (stage, &run.error) {
        (_, Some(_)) => "failed",
        _ if p.plan.steps.is_empty() => "already-done",
        (Stage::Planned, None) => "planned",
        (Stage::Ran, None) => "done",
    }
}

/// Several pairs with each pair's and each step's outcome, for `-o json|yaml`.
#[derive(Debug, Serialize)]
struct ManyOutcome<'a> {
    command: String,
    namespace: &'a str,
    dry_run: bool,
    /// The quiesce steps taken before the pairs' own.
    prepare: Vec<StepOutcome<'a>>,
    pairs: Vec<PairOutcome<'a>>,
}

#[derive(Debug, Serialize)]
struct PairOutcome<'a> {
    old_claim: &'a str,
    new_claim: &'a str,
    volume: &'a str,
    /// `planned`, `done`, `already-done` or `failed`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    steps: Vec<StepOutcome<'a>>,
    done: &'a [String],
    warnings: &'a [String],
}

fn outcome<'a>(
    namespace: &'a str,
    prepare: &'a Plan,
    pairs: &'a [PairPlan],
    runs: &'a [PairRun],
    stage: Stage,
    dry_run: bool,
) -> ManyOutcome<'a> {
    let step = |step: &'a Action, outcome: &'static str| StepOutcome {
        step,
        description: step.describe(),
        outcome,
    };
    let ran = if stage == Stage::Ran {
        "done"
    } else {
        "planned"
    };
    ManyOutcome {
        command: format!(
            "adopt {}",
            pairs
                .iter()
                .map(|p| p.pair.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        namespace,
        dry_run,
        prepare: prepare.steps.iter().map(|s| step(s, ran)).collect(),
        pairs: pairs
            .iter()
            .zip(runs)
            .map(|(p, run)| PairOutcome {
                old_claim: &p.pair.old,
                new_claim: &p.pair.new,
                volume: &p.record.volume,
                outcome: pair_outcome(p, run, stage),
                error: run.error.as_deref(),
                steps: p
                    .plan
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let outcome = match (stage, &run.error) {
                            (Stage::Planned, _) => "planned",
                            (Stage::Ran, None) => "done",
                            (Stage::Ran, Some(_)) if i + 1 < run.attempted => "done",
                            (Stage::Ran, Some(_)) if i + 1 == run.attempted => "failed",
                            (Stage::Ran, Some(_)) => "not-run",
                        };
                        step(s, outcome)
                    })
                    .collect(),
                done: &p.plan.done,
                warnings: &p.plan.warnings,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_pair_as_two_words_or_many_as_old_equals_new() {
        assert_eq!(
            parse_pairs(&words(&["a", "b"])).unwrap(),
            [Pair {
                old: "a".into(),
                new: "b".into()
            }]
        );
        assert_eq!(
            parse_pairs(&words(&["a=b", "c=d", "e=f"])).unwrap(),
            [
                Pair {
                    old: "a".into(),
                    new: "b".into()
                },
                Pair {
                    old: "c".into(),
                    new: "d".into()
                },
                Pair {
                    old: "e".into(),
                    new: "f".into()
                },
            ]
        );
        assert_eq!(parse_pairs(&words(&["a=b"])).unwrap().len(), 1);
    }

    #[test]
    fn mixed_forms_bad_names_and_reused_claims_are_bad_input() {
        for (w, expected) in [
            (&["a=b", "c"][..], "\"c\" is not a pair OLD=NEW"),
            (&["a", "b", "c"][..], "\"a\" is not a pair OLD=NEW"),
            (&["a"][..], "\"a\" is not a pair OLD=NEW"),
            (&["a=", "c=d"][..], "\"a=\" is not a pair OLD=NEW"),
            (&["a=b=c"][..], "\"a=b=c\" is not a pair OLD=NEW"),
            (&["a=B_C", "c=d"][..], "invalid claim name \"B_C\""),
            (
                &["a", "a"][..],
                "OLD_CLAIM and NEW_CLAIM are the same claim",
            ),
            (&["a=a", "c=d"][..], "a=a: OLD and NEW are the same claim"),
            (
                &["a=b", "a=c"][..],
                "pvc/a is named by two pairs (a=b and a=c)",
            ),
            (
                &["a=b", "c=b"][..],
                "pvc/b is named by two pairs (a=b and c=b)",
            ),
            (
                &["a=b", "b=c"][..],
                "pvc/b is named by two pairs (a=b and b=c)",
            ),
        ] {
            let err = parse_pairs(&words(w)).unwrap_err().to_string();
            assert!(err.contains(expected), "{w:?}: {err}");
        }
    }

    fn wait_bound() -> Action {
        Action::WaitBound {
            claim: "n".into(),
            volume: "v".into(),
        }
    }

    #[test]
    fn the_binding_is_waited_for_apart_from_the_other_steps() {
        let plan = Plan {
            steps: vec![Action::WaitUnmounted { claim: "o".into() }, wait_bound()],
            ..Plan::default()
        };
        assert_eq!(until_bound(&plan), &plan.steps[..1]);
        assert_eq!(wait_step(&plan), Some(("n", "v")));
        let plan = Plan {
            steps: vec![Action::WaitUnmounted { claim: "o".into() }],
            ..Plan::default()
        };
        assert_eq!(until_bound(&plan).len(), 1);
        assert_eq!(wait_step(&plan), None);
    }

    #[test]
    fn owners_shared_by_pairs_are_scaled_once_and_every_claim_waited_for() {
        let owners: Replicas = [
            ("deployment/a".to_string(), 2),
            ("deployment/z".to_string(), 0),
        ]
        .into();
        assert_eq!(
            quiesce_steps(&owners, ["x", "y"]),
            [
                Action::Scale {
                    owner: "deployment/a".into(),
                    from: 2,
                    to: 0
                },
                Action::WaitUnmounted { claim: "x".into() },
                Action::WaitUnmounted { claim: "y".into() },
            ]
        );
    }
}
