//! Pure plans. A rollout is batches of pods in the order they restart; with a journal entry of
//! an unfinished rollout of the same selection it is what that entry has left, so a re-run
//! after a kill goes on instead of starting over. A quiesce records each workload's replicas
//! before the first scale, and a re-run keeps the recorded number (the live one is zero by
//! then); resume puts the recorded numbers back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::select::Selected;

/// How pods are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Evict batches of `--max-unavailable` pods through the eviction API (budgets hold), and
    /// wait for their replacements to be Ready and the application healthy between batches.
    Rolling,
    /// Delete every selected pod together, then wait once.
    AllAtOnce,
    /// Run the profile's restart command in each container; the pods stay.
    InPlace,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Rolling => "rolling",
            Mode::AllAtOnce => "all-at-once",
            Mode::InPlace => "in-place",
        }
    }
}

/// Where one pod is in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Not touched yet.
    Pending,
    /// Eviction, deletion or the restart command was sent.
    Restarting,
    /// Back and Ready (and the application healthy after its batch).
    Done,
}

/// One pod of a rollout as the journal records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub name: String,
    /// The uid of the pod that was selected; a different uid under the name is its replacement.
    pub uid: String,
    /// The controller, when replacements get new names (see `slots`).
    #[serde(default)]
    pub owner: Option<String>,
    pub batch: usize,
    pub step: Step,
}

/// A rollout as the journal records it (entry `rollout`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The selectors in words: a re-run with the same ones goes on with this rollout.
    pub selection: String,
    pub mode: Mode,
    pub max_unavailable: usize,
    pub pods: Vec<PodRecord>,
    /// True once every pod is done.
    pub finished: bool,
}

impl Rollout {
    /// Batches of pods still to do, in order.
    pub fn remaining(&self) -> Vec<Vec<&PodRecord>> {
        let mut batches: BTreeMap<usize, Vec<&PodRecord>> = BTreeMap::new();
        for p in self.pods.iter().filter(|p| p.step != Step::Done) {
            batches.entry(p.batch).or_default().push(p);
        }
        batches.into_values().collect()
    }

    /// How many pods are done.
    pub fn done(&self) -> usize {
        self.pods.iter().filter(|p| p.step == Step::Done).count()
    }

    /// Sets one pod's step.
    pub fn set(&mut self, name: &str, step: Step) {
        for p in self.pods.iter_mut().filter(|p| p.name == name) {
            p.step = step;
        }
        self.finished = self.pods.iter().all(|p| p.step == Step::Done);
    }
}

/// Orders and batches selected pods: pods that are not Ready go first (restarting them costs
/// no availability), then by name; rolling and in-place take `max_unavailable` at a time,
/// all-at-once takes all.
pub fn new_rollout(
    selection: String,
    pods: &[Selected],
    mode: Mode,
    max_unavailable: usize,
) -> Rollout {
    let mut ordered: Vec<&Selected> = pods.iter().collect();
    ordered.sort_by(|a, b| a.ready.cmp(&b.ready).then(a.name.cmp(&b.name)));
    let size = match mode {
        Mode::AllAtOnce => ordered.len().max(1),
        _ => max_unavailable.max(1),
    };
    Rollout {
        selection,
        mode,
        max_unavailable: size,
        pods: ordered
            .iter()
            .enumerate()
            .map(|(i, p)| PodRecord {
                name: p.name.clone(),
                uid: p.uid.clone(),
                owner: p
                    .controller
                    .clone()
                    .filter(|c| crate::slots::renames(Some(c))),
                batch: i / size,
                step: Step::Pending,
            })
            .collect(),
        finished: false,
    }
}

/// What to do with a recorded rollout, given the selection of this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumption {
    /// Nothing unfinished is recorded: plan anew.
    Fresh,
    /// The same selection is unfinished: go on with what it has left.
    GoOn(Rollout),
    /// A different selection is unfinished: refuse until it is finished.
    Conflict(Rollout),
}

/// Decides between a fresh plan and the recorded rollout.
pub fn resumption(recorded: Option<Rollout>, selection: &str) -> Resumption {
    match recorded {
        Some(r) if !r.finished && r.selection == selection => Resumption::GoOn(r),
        Some(r) if !r.finished => Resumption::Conflict(r),
        _ => Resumption::Fresh,
    }
}

/// Kinds `quiesce` scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    ReplicaSet,
}

impl WorkloadKind {
    pub fn short(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deploy",
            WorkloadKind::StatefulSet => "sts",
            WorkloadKind::ReplicaSet => "rs",
        }
    }
}

/// `deploy/N`, `sts/N` or `OTHER-NS/sts/N`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
}

impl WorkloadRef {
    /// Parses one argument; `namespace` is the `-n` namespace.
    pub fn parse(text: &str, namespace: &str) -> Result<WorkloadRef, String> {
        let parts: Vec<&str> = text.split('/').collect();
        let (ns, kind, name) = match parts.as_slice() {
            [kind, name] => (namespace, *kind, *name),
            [ns, kind, name] => (*ns, *kind, *name),
            _ => {
                return Err(format!(
                    "{text:?} is not a workload: write deploy/NAME, sts/NAME or NAMESPACE/sts/NAME"
                ));
            }
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deploy" | "deployment" | "deployments" | "deployment.apps" => WorkloadKind::Deployment,
            "sts" | "statefulset" | "statefulsets" | "statefulset.apps" => {
                WorkloadKind::StatefulSet
            }
            "rs" | "replicaset" | "replicasets" | "replicaset.apps" => WorkloadKind::ReplicaSet,
            other => {
                return Err(format!(
                    "{text:?}: cannot scale a {other:?}; quiesce takes deploy/, sts/ and rs/"
                ));
            }
        };
        upgrade_shared::names::check_name("namespace", ns)?;
        upgrade_shared::names::check_name(kind.short(), name)?;
        Ok(WorkloadRef {
            namespace: ns.to_string(),
            kind,
            name: name.to_string(),
        })
    }

    /// `sts/rok-operator -n rok-system` style, for plans and the journal.
    pub fn display(&self) -> String {
        format!("{}/{} -n {}", self.kind.short(), self.name, self.namespace)
    }
}

/// One workload of a quiesce as the journal records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quiesced {
    pub workload: WorkloadRef,
    /// Replicas before the first scale to zero: what `resume` puts back.
    pub replicas: i32,
}

/// The quiesce journal entry (`quiesce`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QuiesceRecord {
    pub workloads: Vec<Quiesced>,
    /// True once resume has put every workload back.
    pub resumed: bool,
}

/// One workload in a quiesce plan.
#[derive(Debug, Clone, PartialEq)]
pub struct QuiesceStep {
    pub workload: WorkloadRef,
    /// Replicas now.
    pub live: i32,
    /// Replicas to put back on resume (recorded earlier, or `live`).
    pub record: i32,
}

/// Plans a quiesce: each workload with the replicas to record. `live` holds the current
/// replicas; a workload already in an unresumed record keeps its recorded number.
pub fn quiesce_plan(
    targets: &[WorkloadRef],
    live: &BTreeMap<WorkloadRef, i32>,
    recorded: Option<&QuiesceRecord>,
) -> Vec<QuiesceStep> {
    let earlier = |w: &WorkloadRef| {
        recorded
            .filter(|r| !r.resumed)
            .and_then(|r| r.workloads.iter().find(|q| &q.workload == w))
            .map(|q| q.replicas)
    };
    targets
        .iter()
        .map(|w| {
            let now = live.get(w).copied().unwrap_or(0);
            QuiesceStep {
                workload: w.clone(),
                live: now,
                record: earlier(w).unwrap_or(now),
            }
        })
        .collect()
}

/// The record a quiesce writes before scaling: unresumed entries of an earlier quiesce are kept,
/// this plan's workloads added.
pub fn quiesce_record(steps: &[QuiesceStep], recorded: Option<&QuiesceRecord>) -> QuiesceRecord {
    let mut out: Vec<Quiesced> = recorded
        .filter(|r| !r.resumed)
        .map(|r| r.workloads.clone())
        .unwrap_or_default();
    for s in steps {
        if !out.iter().any(|q| q.workload == s.workload) {
            out.push(Quiesced {
                workload: s.workload.clone(),
                replicas: s.record,
            });
        }
    }
    QuiesceRecord {
        workloads: out,
        resumed: false,
    }
}

/// One workload in a resume plan.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeStep {
    pub workload: WorkloadRef,
    pub live: Option<i32>,
    pub to: i32,
}

/// Plans a resume from the record: every recorded workload back to its replicas, in the
/// reverse of the order they were quiesced; `live` is `None` for a workload that is gone.
pub fn resume_plan(recorded: &QuiesceRecord, live: &BTreeMap<WorkloadRef, i32>) -> Vec<ResumeStep> {
    recorded
        .workloads
        .iter()
        .rev()
        .map(|q| ResumeStep {
            workload: q.workload.clone(),
            live: live.get(&q.workload).copied(),
            to: q.replicas,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sel(name: &str, ready: bool) -> Selected {
        Selected {
            name: name.into(),
            uid: format!("u-{name}"),
            ready,
            controller: None,
            because: vec![],
        }
    }

    #[test]
    fn rolling_batches_put_broken_pods_first() {
        let pods = [
            sel("c", true),
            sel("a", true),
            sel("b", false),
            sel("d", true),
        ];
        let r = new_rollout("--all".into(), &pods, Mode::Rolling, 2);
        let order: Vec<(&str, usize)> = r.pods.iter().map(|p| (p.name.as_str(), p.batch)).collect();
        assert_eq!(order, [("b", 0), ("a", 0), ("c", 1), ("d", 1)]);
        let all = new_rollout("--all".into(), &pods, Mode::AllAtOnce, 1);
        assert!(all.pods.iter().all(|p| p.batch == 0));
        let one = new_rollout("--all".into(), &pods, Mode::InPlace, 0);
        assert_eq!(one.remaining().len(), 4, "zero is taken as one at a time");
    }

    #[test]
    fn a_rerun_goes_on_with_what_is_left() {
        let pods = [sel("a", true), sel("b", true), sel("c", true)];
        let mut r = new_rollout("--all".into(), &pods, Mode::Rolling, 1);
        r.set("a", Step::Done);
        r.set("b", Step::Restarting);
        let left = r.remaining();
        assert_eq!(left.len(), 2);
        assert_eq!(left[0][0].name, "b");
        assert_eq!(r.done(), 1);
        assert_eq!(
            resumption(Some(r.clone()), "--all"),
            Resumption::GoOn(r.clone())
        );
        assert_eq!(
            resumption(Some(r.clone()), "x-1"),
            Resumption::Conflict(r.clone())
        );
        r.set("b", Step::Done);
        r.set("c", Step::Done);
        assert!(r.finished);
        assert_eq!(resumption(Some(r), "--all"), Resumption::Fresh);
        assert_eq!(resumption(None, "--all"), Resumption::Fresh);
    }

    #[test]
    fn workload_refs() {
        let w = WorkloadRef::parse("rok-system/sts/rok-operator", "rok").unwrap();
        assert_eq!(
            (w.namespace.as_str(), w.kind, w.name.as_str()),
            ("rok-system", WorkloadKind::StatefulSet, "rok-operator")
        );
        assert_eq!(
            WorkloadRef::parse("deploy/web", "ns").unwrap().display(),
            "deploy/web -n ns"
        );
        assert!(
            WorkloadRef::parse("ds/node", "ns")
                .unwrap_err()
                .contains("cannot scale")
        );
        assert!(WorkloadRef::parse("web", "ns").is_err());
        assert!(WorkloadRef::parse("sts/$(id)", "ns").is_err());
    }

    #[test]
    fn a_second_quiesce_keeps_the_recorded_replicas_and_resume_reverses() {
        let op = WorkloadRef::parse("rok-system/sts/rok-operator", "rok").unwrap();
        let csi = WorkloadRef::parse("sts/rok-csi-controller", "rok").unwrap();
        let targets = [op.clone(), csi.clone()];
        let live = BTreeMap::from([(op.clone(), 1), (csi.clone(), 3)]);
        let plan = quiesce_plan(&targets, &live, None);
        assert_eq!(plan[1].record, 3);
        let record = quiesce_record(&plan, None);
        // Killed after the operator was scaled: it is at zero now, the record still says 1.
        let live = BTreeMap::from([(op.clone(), 0), (csi.clone(), 3)]);
        let again = quiesce_plan(&targets, &live, Some(&record));
        assert_eq!((again[0].live, again[0].record), (0, 1));
        let resume = resume_plan(&quiesce_record(&again, Some(&record)), &live);
        let order: Vec<(&str, i32)> = resume
            .iter()
            .map(|s| (s.workload.name.as_str(), s.to))
            .collect();
        assert_eq!(order, [("rok-csi-controller", 3), ("rok-operator", 1)]);
        let done = QuiesceRecord {
            resumed: true,
            ..record
        };
        assert_eq!(quiesce_plan(&targets, &live, Some(&done))[0].record, 0);
    }
}
