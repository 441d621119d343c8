//! What to do with each script of a chain, decided from the history rows alone: skip it
//! (applied, baselined), run it from the top, resume it at a statement, or refuse (drift, a
//! dirty row, changed statements that already ran, a gap in the order).
//!
//! Rules, per script, from its latest `run` row and any `repair` rows after that:
//! - no run row: pending, unless a baseline at or above the script's target covers it;
//! - a successful run: applied when its sha256 is the script's, or a later repair accepted
//!   the script's current sha256; otherwise drift;
//! - an unfinished or failed run with `in_flight` set: dirty (a statement MySQL commits on
//!   its own was running and nobody knows whether it committed) until a repair; then the run
//!   resumes at that statement, running it again;
//! - an unfinished or failed run without it: resumes at `reached + 1` when the statements
//!   `1..=reached` are the ones that ran (prefix hash), or a repair accepted the change.
//!
//! A chain is refused as a whole if any script is refused, or if a script is applied after
//! one before it that is not: nothing runs out of order.

use serde::Serialize;
use upgrade_shared::version::Version;

use crate::history::{Row, RowKind};
use crate::scripts::Script;

/// The state of one script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    /// Never run.
    Pending,
    /// Run to the end with this checksum (`repaired`: a repair accepted the current one).
    Applied { row: u64, repaired: bool },
    /// Covered by `baseline --version V`.
    Baselined { version: String },
    /// Partly run: continue at statement `at` (1-based). `failed` holds the error that
    /// stopped the run, if one did.
    Resume {
        row: u64,
        at: usize,
        failed: Option<String>,
    },
    /// Applied with another checksum.
    Drift { row: u64, recorded: String },
    /// A statement that commits on its own was running when the run stopped.
    Dirty { row: u64, statement: usize },
    /// Statements that already ran were changed since.
    Changed { row: u64, reached: usize },
}

impl State {
    /// True when applying must stop before the first change.
    pub fn refused(&self) -> bool {
        matches!(
            self,
            State::Drift { .. } | State::Dirty { .. } | State::Changed { .. }
        )
    }

    /// True when the script is done.
    pub fn done(&self) -> bool {
        matches!(self, State::Applied { .. } | State::Baselined { .. })
    }

    /// The first statement to run (`None` when there is nothing to run).
    pub fn start_at(&self) -> Option<usize> {
        match self {
            State::Pending => Some(1),
            State::Resume { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// One short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Applied { .. } => "applied",
            State::Baselined { .. } => "baselined",
            State::Resume { failed: None, .. } => "interrupted",
            State::Resume { .. } => "failed",
            State::Drift { .. } => "drift",
            State::Dirty { .. } => "dirty",
            State::Changed { .. } => "changed",
        }
    }
}

/// The state of `script` given every history row.
pub fn state(script: &Script, rows: &[Row]) -> State {
    let mine: Vec<&Row> = rows.iter().filter(|r| r.script == script.file).collect();
    let last_run = mine.iter().rev().find(|r| r.kind == RowKind::Run);
    let Some(run) = last_run else {
        return match baseline_covering(script, rows) {
            Some(version) => State::Baselined { version },
            None => State::Pending,
        };
    };
    let repairs: Vec<&&Row> = mine
        .iter()
        .filter(|r| r.kind == RowKind::Repair && r.id > run.id)
        .collect();
    let accepted = |sha: &str| repairs.iter().any(|r| r.sha256 == sha);
    if run.success {
        if run.sha256 == script.sha256 {
            return State::Applied {
                row: run.id,
                repaired: false,
            };
        }
        if accepted(&script.sha256) {
            return State::Applied {
                row: run.id,
                repaired: true,
            };
        }
        return State::Drift {
            row: run.id,
            recorded: run.sha256.clone(),
        };
    }
    let reached = run.reached as usize;
    if let Some(k) = run.in_flight
        && repairs.is_empty()
    {
        return State::Dirty {
            row: run.id,
            statement: k as usize,
        };
    }
    let at = run.in_flight.map_or(reached + 1, |k| k as usize);
    let prefix_same =
        reached < script.statements.len() && script.prefix_sha256(reached) == run.reached_sha256;
    if !prefix_same && !accepted(&script.sha256) {
        return State::Changed {
            row: run.id,
            reached,
        };
    }
    State::Resume {
        row: run.id,
        at: at.min(script.statements.len().max(1)),
        failed: run.error.clone(),
    }
}

/// The highest baseline version at or above the script's target, if any.
fn baseline_covering(script: &Script, rows: &[Row]) -> Option<String> {
    rows.iter()
        .filter(|r| r.kind == RowKind::Baseline)
        .filter_map(|r| Version::parse(&r.version_to).ok().map(|v| (v, r)))
        .filter(|(v, _)| v.cmp_numbers(&script.to).is_ge())
        .max_by(|a, b| a.0.cmp_numbers(&b.0))
        .map(|(_, r)| r.version_to.clone())
}

/// The version the history says the schema is at: the highest target of a successful run or
/// a baseline.
pub fn current_version(rows: &[Row]) -> Option<Version> {
    rows.iter()
        .filter(|r| (r.kind == RowKind::Run && r.success) || r.kind == RowKind::Baseline)
        .filter_map(|r| Version::parse(&r.version_to).ok())
        .max_by(|a, b| a.cmp_numbers(b))
}

/// The decision for a whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Each script's state, in chain order.
    pub states: Vec<State>,
    /// Why nothing may run, one line per reason (empty: go ahead).
    pub refusals: Vec<String>,
}

/// Decides a chain. `all` is every script known (the chain's and the others): an applied
/// script that drifted or a dirty one refuses the run even outside the chain, as every
/// applied migration is validated before anything runs.
pub fn decide(chain: &[Script], all: &[Script], rows: &[Row]) -> Decision {
    let states: Vec<State> = chain.iter().map(|s| state(s, rows)).collect();
    let mut refusals = Vec::new();
    for (script, st) in chain.iter().zip(&states) {
        if let Some(reason) = refusal(script, st) {
            refusals.push(reason);
        }
    }
    for script in all
        .iter()
        .filter(|s| !chain.iter().any(|c| c.file == s.file))
    {
        if let Some(reason) = refusal(script, &state(script, rows)) {
            refusals.push(reason);
        }
    }
    if let Some(first_open) = states.iter().position(|s| !s.done()) {
        for (script, st) in chain.iter().zip(&states).skip(first_open + 1) {
            if matches!(st, State::Applied { .. }) {
                refusals.push(format!(
                    "{} is recorded as applied but {}, before it in the chain, is not: the order is broken; look at `status`",
                    script.file, chain[first_open].file
                ));
            }
        }
    }
    Decision { states, refusals }
}

fn refusal(script: &Script, st: &State) -> Option<String> {
    let file = &script.file;
    Some(match st {
        State::Drift { row, recorded } => format!(
            "{file} changed since it was applied (history row {row}: sha256 {recorded}, now {}): drift; \
restore the applied script, or accept it with `repair --script {file} --reason …`",
            script.sha256
        ),
        State::Dirty { row, statement } => {
            let what = script
                .statements
                .get(statement.saturating_sub(1))
                .map(|s| format!(" (line {}: {})", s.line, crate::split::summary(&s.text)))
                .unwrap_or_default();
            format!(
                "{file} is dirty (history row {row}): statement {statement}{what} was running when the run \
stopped and MySQL commits it on its own, so whether it took effect is unknown; check the schema, \
then `repair --script {file} --reason …` (the next apply runs statement {statement} again)"
            )
        }
        State::Changed { row, reached } => format!(
            "{file} was partly applied (history row {row}: statements 1-{reached} committed) and those \
statements changed since; restore them, or accept the change with `repair --script {file} --reason …`"
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::run_row;

    fn script(text: &str) -> Script {
        Script::parse("1.7.2-1.8.0.sql", text).unwrap()
    }

    const TEXT: &str =
        "SET @a = 1; PREPARE s FROM 'ALTER TABLE t ADD c INT'; EXECUTE s; DEALLOCATE PREPARE s;";

    fn partial(s: &Script, reached: u32, in_flight: Option<u32>, error: Option<&str>) -> Row {
        let mut r = run_row(1, &s.file, &s.sha256);
        r.success = false;
        r.reached = reached;
        r.reached_sha256 = s.prefix_sha256(reached as usize);
        r.in_flight = in_flight;
        r.finished = error.map(|_| "2026-12-01T09:00:01.000000Z".to_string());
        r.error = error.map(str::to_string);
        r
    }

    fn repair(id: u64, s: &Script) -> Row {
        let mut r = run_row(id, &s.file, &s.sha256);
        r.kind = RowKind::Repair;
        r.reason = Some("looked at it".into());
        r
    }

    #[test]
    fn pending_applied_and_drift() {
        let s = script(TEXT);
        assert_eq!(state(&s, &[]), State::Pending);
        let done = run_row(1, &s.file, &s.sha256);
        assert_eq!(
            state(&s, std::slice::from_ref(&done)),
            State::Applied {
                row: 1,
                repaired: false
            }
        );
        let edited = script(&format!("{TEXT} DO 0;"));
        let st = state(&edited, std::slice::from_ref(&done));
        assert!(matches!(st, State::Drift { row: 1, .. }), "{st:?}");
        assert!(st.refused());
        // A repair that accepts the edited text ends the drift.
        let rows = [done, repair(2, &edited)];
        assert_eq!(
            state(&edited, &rows),
            State::Applied {
                row: 1,
                repaired: true
            }
        );
    }

    #[test]
    fn other_scripts_rows_do_not_count() {
        let s = script(TEXT);
        let other = run_row(1, "1.8.0-1.9.0.sql", "x");
        assert_eq!(state(&s, &[other]), State::Pending);
    }

    #[test]
    fn an_interrupted_run_resumes_at_the_next_statement() {
        let s = script(TEXT);
        let st = state(&s, &[partial(&s, 2, None, None)]);
        assert_eq!(
            st,
            State::Resume {
                row: 1,
                at: 3,
                failed: None
            }
        );
        assert_eq!(st.start_at(), Some(3));
    }

    #[test]
    fn a_statement_in_flight_is_dirty_until_repaired() {
        let s = script(TEXT);
        let cut = partial(&s, 2, Some(3), None);
        let st = state(&s, std::slice::from_ref(&cut));
        assert_eq!(
            st,
            State::Dirty {
                row: 1,
                statement: 3
            }
        );
        let d = decide(std::slice::from_ref(&s), &[], std::slice::from_ref(&cut));
        assert_eq!(d.refusals.len(), 1);
        assert!(
            d.refusals[0].contains("statement 3 (line 1: EXECUTE s)"),
            "{}",
            d.refusals[0]
        );
        // After a repair the statement runs again.
        assert_eq!(
            state(&s, &[cut.clone(), repair(2, &s)]),
            State::Resume {
                row: 1,
                at: 3,
                failed: None
            }
        );
        // A repair recorded before the run does not count.
        let mut early = repair(0, &s);
        early.id = 0;
        assert!(matches!(state(&s, &[early, cut]), State::Dirty { .. }));
    }

    #[test]
    fn a_failed_run_resumes_at_the_failed_statement_after_a_fix() {
        let s = script(TEXT);
        let failed = partial(&s, 2, None, Some("ERROR 1146: no such table"));
        let fixed = script(
            "SET @a = 1; PREPARE s FROM 'ALTER TABLE t ADD c INT'; EXECUTE s; DEALLOCATE PREPARE s; DO 1;",
        );
        let st = state(&fixed, std::slice::from_ref(&failed));
        assert_eq!(
            st,
            State::Resume {
                row: 1,
                at: 3,
                failed: Some("ERROR 1146: no such table".into())
            }
        );
        assert_eq!(st.word(), "failed");
        // Changing a statement that already committed is refused.
        let rewritten = script("SET @a = 2; PREPARE s FROM 'x'; EXECUTE s;");
        let st = state(&rewritten, std::slice::from_ref(&failed));
        assert_eq!(st, State::Changed { row: 1, reached: 2 });
        assert!(
            decide(&[rewritten], &[], &[failed]).refusals[0].contains("statements 1-2 committed")
        );
    }

    #[test]
    fn the_latest_run_decides() {
        let s = script(TEXT);
        let old = partial(&s, 1, None, Some("boom"));
        let mut done = run_row(2, &s.file, &s.sha256);
        done.reached = 4;
        assert!(matches!(
            state(&s, &[old, done]),
            State::Applied { row: 2, .. }
        ));
    }

    #[test]
    fn baselines_cover_older_scripts() {
        let a = Script::parse("1.7.2-1.8.0.sql", TEXT).unwrap();
        let b = Script::parse("1.8.0-1.9.0.sql", TEXT).unwrap();
        let mut base = run_row(1, "baseline", "");
        base.kind = RowKind::Baseline;
        base.version_to = "1.8.0".into();
        let rows = [base];
        assert_eq!(
            state(&a, &rows),
            State::Baselined {
                version: "1.8.0".into()
            }
        );
        assert_eq!(state(&b, &rows), State::Pending);
        assert_eq!(current_version(&rows).unwrap().canonical(), "1.8.0");
        let d = decide(&[a, b], &[], &rows);
        assert!(d.refusals.is_empty());
        assert_eq!(d.states[1].start_at(), Some(1));
    }

    #[test]
    fn nothing_runs_out_of_order() {
        let a = Script::parse("1.7.2-1.8.0.sql", TEXT).unwrap();
        let b = Script::parse("1.8.0-1.9.0.sql", TEXT).unwrap();
        let rows = [run_row(1, &b.file, &b.sha256)];
        let d = decide(&[a, b], &[], &rows);
        assert_eq!(d.refusals.len(), 1);
        assert!(
            d.refusals[0].contains("order is broken"),
            "{:?}",
            d.refusals
        );
    }

    #[test]
    fn drift_outside_the_chain_refuses_too() {
        let a = Script::parse("1.7.2-1.8.0.sql", TEXT).unwrap();
        let b = Script::parse("1.8.0-1.9.0.sql", TEXT).unwrap();
        let rows = [run_row(1, &a.file, "sha256 of an older text")];
        let d = decide(std::slice::from_ref(&b), &[a.clone(), b.clone()], &rows);
        assert_eq!(d.states, [State::Pending]);
        assert_eq!(d.refusals.len(), 1);
        assert!(d.refusals[0].starts_with("1.7.2-1.8.0.sql changed since it was applied"));
    }

    #[test]
    fn current_version_ignores_failed_runs() {
        let s = script(TEXT);
        let mut ok = run_row(1, "1.7.2-1.8.0.sql", "a");
        ok.version_to = "1.8.0".into();
        let mut failed = partial(&s, 0, None, Some("x"));
        failed.version_to = "1.9.0".into();
        assert_eq!(current_version(&[ok, failed]).unwrap().canonical(), "1.8.0");
        assert_eq!(current_version(&[]), None);
    }
}
