//! Plans and reports as people read them (tables) and as scripts read them (`-o json|yaml`).

use serde::Serialize;
use upgrade_shared::output::{Styles, table};

use crate::plan::{Mode, QuiesceStep, ResumeStep, Rollout, Step};
use crate::select::Selected;

/// What a rollout will do, before it does it.
pub fn rollout_plan(
    namespace: &str,
    rollout: &Rollout,
    selected: &[Selected],
    notes: &[String],
    health: Option<&str>,
    in_place: Option<&str>,
    styles: &Styles,
) -> String {
    let mut out = String::new();
    let how = match rollout.mode {
        Mode::Rolling => format!(
            "rolling, {} at a time, through the eviction API (disruption budgets hold)",
            rollout.max_unavailable
        ),
        Mode::AllAtOnce => {
            "all at once: every pod is deleted together (disruption budgets do not apply), one wait"
                .to_string()
        }
        Mode::InPlace => format!(
            "in place, {} at a time: {}; the pods stay",
            rollout.max_unavailable,
            in_place.unwrap_or("the restart command")
        ),
    };
    out.push_str(&styles.heading(&format!(
        "Restart {} pod(s) in {namespace}: {how}\n",
        rollout.pods.len()
    )));
    if rollout.done() > 0 {
        out.push_str(&format!(
            "Going on with the recorded rollout: {} of {} done\n",
            rollout.done(),
            rollout.pods.len()
        ));
    }
    let rows: Vec<Vec<String>> = rollout
        .pods
        .iter()
        .map(|p| {
            let why = selected
                .iter()
                .find(|s| s.name == p.name)
                .map(|s| s.because.join("; "))
                .unwrap_or_else(|| "recorded".to_string());
            vec![
                (p.batch + 1).to_string(),
                format!("pod/{}", p.name),
                step_word(p.step).to_string(),
                why,
            ]
        })
        .collect();
    out.push_str(&table(
        &["batch", "pod", "state", "selected by"],
        &rows,
        |_, c| c.to_string(),
    ));
    let wait = match health {
        Some(h) => format!("Ready, then {h} true"),
        None => "Ready".to_string(),
    };
    out.push_str(&format!(
        "Between batches: wait until the pods are {wait}.\n"
    ));
    for n in notes {
        out.push_str(&format!("{} {n}\n", styles.dim("note:")));
    }
    out
}

fn step_word(step: Step) -> &'static str {
    match step {
        Step::Pending => "pending",
        Step::Restarting => "restarting",
        Step::Done => "done",
    }
}

/// One pod's outcome.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub pod: String,
    pub batch: usize,
    /// `ready`, `failed`, `blocked` or `not-started`.
    pub result: String,
    /// The pod now serving the slot (a new name for Deployment pods).
    pub now: Option<String>,
    pub seconds: Option<f64>,
    pub detail: String,
}

/// The report at the end of `pods`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub namespace: String,
    pub mode: Mode,
    pub outcomes: Vec<Outcome>,
    /// Why the rollout stopped, when it did.
    pub stopped: Option<String>,
}

/// The outcome table.
pub fn outcomes(report: &Report, styles: &Styles) -> String {
    let rows: Vec<Vec<String>> = report
        .outcomes
        .iter()
        .map(|o| {
            vec![
                format!("pod/{}", o.pod),
                (o.batch + 1).to_string(),
                o.result.clone(),
                o.now.clone().unwrap_or_else(|| "-".into()),
                o.seconds.map_or("-".into(), |s| format!("{s:.1}s")),
                o.detail.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &["pod", "batch", "result", "now", "took", "detail"],
        &rows,
        |col, c| match (col, c) {
            (2, "ready") => styles.good(c),
            (2, "failed" | "blocked") => styles.bad(c),
            (2, _) => styles.warn(c),
            _ => c.to_string(),
        },
    );
    if let Some(why) = &report.stopped {
        out.push_str(&format!("{} {why}\n", styles.bad("stopped:")));
    }
    out
}

/// A quiesce plan.
pub fn quiesce_plan(steps: &[QuiesceStep], idle: Option<(&str, &str, u64)>) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                format!("{}/{}", s.workload.kind.short(), s.workload.name),
                s.workload.namespace.clone(),
                s.live.to_string(),
                "0".into(),
                s.record.to_string(),
            ]
        })
        .collect();
    let mut out =
        String::from("Quiesce: scale to zero in this order and wait until their pods are gone\n");
    out.push_str(&table(
        &["workload", "namespace", "replicas", "to", "resume to"],
        &rows,
        |_, c| c.to_string(),
    ));
    if let Some((sel, ns, secs)) = idle {
        out.push_str(&format!(
            "Then wait until the pods matching {sel} in {ns} log nothing for {secs}s.\n"
        ));
    }
    out
}

/// A resume plan.
pub fn resume_plan(steps: &[ResumeStep]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                format!("{}/{}", s.workload.kind.short(), s.workload.name),
                s.workload.namespace.clone(),
                s.live.map_or("gone".into(), |l| l.to_string()),
                s.to.to_string(),
            ]
        })
        .collect();
    let mut out = String::from("Resume: put back the replicas recorded by quiesce\n");
    out.push_str(&table(
        &["workload", "namespace", "replicas", "to"],
        &rows,
        |_, c| c.to_string(),
    ));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::plan::new_rollout;

    #[test]
    fn a_rolling_plan_names_batches_reasons_and_waits() {
        let sel = vec![
            Selected {
                name: "sample-log-1".into(),
                uid: "u1".into(),
                ready: true,
                controller: None,
                because: vec!["process group log-1: MissingProcesses".into()],
            },
            Selected {
                name: "sample-storage-1".into(),
                uid: "u2".into(),
                ready: false,
                controller: None,
                because: vec!["NotReady".into()],
            },
        ];
        let r = new_rollout("x".into(), &sel, Mode::Rolling, 1);
        let text = rollout_plan(
            "fdb",
            &r,
            &sel,
            &["pod/x skipped".into()],
            Some("foundationdbcluster/sample status.health.available"),
            None,
            &Styles::plain(),
        );
        insta::assert_snapshot!(text, @r"
        Restart 2 pod(s) in fdb: rolling, 1 at a time, through the eviction API (disruption budgets hold)
        BATCH   POD                    STATE     SELECTED BY
        1       pod/sample-storage-1   pending   NotReady
        2       pod/sample-log-1       pending   process group log-1: MissingProcesses
        Between batches: wait until the pods are Ready, then foundationdbcluster/sample status.health.available true.
        note: pod/x skipped
        ");
    }

    #[test]
    fn the_outcome_table_says_where_it_stopped() {
        let report = Report {
            namespace: "ns".into(),
            mode: Mode::Rolling,
            outcomes: vec![
                Outcome {
                    pod: "a".into(),
                    batch: 0,
                    result: "ready".into(),
                    now: Some("a".into()),
                    seconds: Some(1.25),
                    detail: String::new(),
                },
                Outcome {
                    pod: "b".into(),
                    batch: 1,
                    result: "failed".into(),
                    now: Some("b".into()),
                    seconds: None,
                    detail: "not Ready: CrashLoopBackOff".into(),
                },
                Outcome {
                    pod: "c".into(),
                    batch: 2,
                    result: "not-started".into(),
                    now: None,
                    seconds: None,
                    detail: String::new(),
                },
            ],
            stopped: Some("pod/b did not become Ready".into()),
        };
        insta::assert_snapshot!(outcomes(&report, &Styles::plain()), @r"
        POD     BATCH   RESULT        NOW   TOOK   DETAIL
        pod/a   1       ready         a     1.2s   
        pod/b   2       failed        b     -      not Ready: CrashLoopBackOff
        pod/c   3       not-started   -     -      
        stopped: pod/b did not become Ready
        ");
    }
}
