//! What the commands print: plans, runs and status as tables for people, and the same
//! documents as JSON or YAML for scripts.

use serde::Serialize;
use upgrade_shared::output::{Styles, table};
use upgrade_shared::version::Version;

use crate::commands::Setup;
use crate::decide::{Decision, State};
use crate::history::Row;
use crate::runner::{Holder, ScriptRun};
use crate::scripts::{Origin, Script};
use crate::split::Kind;

/// One statement in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct StatementDoc {
    pub index: usize,
    pub line: usize,
    pub kind: Kind,
    pub summary: String,
}

/// One script in a plan.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptDoc {
    pub file: String,
    pub from: String,
    pub to: String,
    pub sha256: String,
    pub statement_count: usize,
    pub statements: Vec<StatementDoc>,
}

impl ScriptDoc {
    pub fn new(s: &Script) -> ScriptDoc {
        ScriptDoc {
            file: s.file.clone(),
            from: s.from.canonical(),
            to: s.to.canonical(),
            sha256: s.sha256.clone(),
            statement_count: s.statements.len(),
            statements: s
                .statements
                .iter()
                .map(|st| StatementDoc {
                    index: st.index,
                    line: st.line,
                    kind: st.kind,
                    summary: crate::split::summary(&st.text),
                })
                .collect(),
        }
    }
}

/// The `plan` document.
#[derive(Debug, Clone, Serialize)]
pub struct PlanDoc {
    pub profile: String,
    pub database: String,
    pub from: String,
    pub to: String,
    pub origin: Origin,
    pub scripts: Vec<ScriptDoc>,
}

impl PlanDoc {
    pub fn new(setup: &Setup, from: &Version, to: &Version, chain: &[Script]) -> PlanDoc {
        PlanDoc {
            profile: setup.profile.name.clone(),
            database: setup.database.clone(),
            from: from.canonical(),
            to: to.canonical(),
            origin: setup.origin.clone(),
            scripts: chain.iter().map(ScriptDoc::new).collect(),
        }
    }
}

/// The plan as a table.
pub fn plan(doc: &PlanDoc, styles: &Styles) -> String {
    let mut out = styles.heading(&format!(
        "Schema scripts of {} for database {}, {} -> {} ({}):",
        doc.profile,
        doc.database,
        doc.from,
        doc.to,
        doc.origin.describe()
    ));
    out.push('\n');
    if doc.scripts.is_empty() {
        out.push_str("nothing to run: the versions are the same\n");
        return out;
    }
    out.push_str(&scripts_table(&doc.scripts));
    out
}

/// Scripts as rows: file, versions, statements, sha256.
pub fn scripts_table(scripts: &[ScriptDoc]) -> String {
    let rows: Vec<Vec<String>> = scripts
        .iter()
        .map(|s| {
            vec![
                s.file.clone(),
                s.from.clone(),
                s.to.clone(),
                s.statement_count.to_string(),
                s.sha256.clone(),
            ]
        })
        .collect();
    table(
        &["script", "from", "to", "statements", "sha256"],
        &rows,
        |_, c| c.to_string(),
    )
}

/// One script of an apply: what it is and what the history says about it.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyScript {
    #[serde(flatten)]
    pub script: ScriptDoc,
    pub state: State,
}

/// The `apply` document: the plan as decided, then what ran.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyDoc {
    pub profile: String,
    pub database: String,
    pub from: String,
    pub to: String,
    pub origin: Origin,
    pub backup: String,
    pub scripts: Vec<ApplyScript>,
    pub refusals: Vec<String>,
    pub runs: Vec<ScriptRun>,
    /// The history read back after the run confirms every script.
    pub verified: bool,
}

impl ApplyDoc {
    pub fn new(
        setup: &Setup,
        from: &Version,
        to: &Version,
        chain: &[Script],
        decision: &Decision,
        backup: &str,
    ) -> ApplyDoc {
        ApplyDoc {
            profile: setup.profile.name.clone(),
            database: setup.database.clone(),
            from: from.canonical(),
            to: to.canonical(),
            origin: setup.origin.clone(),
            backup: backup.to_string(),
            scripts: chain
                .iter()
                .zip(&decision.states)
                .map(|(s, st)| ApplyScript {
                    script: ScriptDoc::new(s),
                    state: st.clone(),
                })
                .collect(),
            refusals: decision.refusals.clone(),
            runs: Vec::new(),
            verified: false,
        }
    }
}

/// What a state means for this run, in words.
pub fn state_detail(state: &State, statements: usize) -> String {
    match state {
        State::Pending => format!("runs statements 1-{statements}"),
        State::Applied { row, repaired } => format!(
            "already applied (history row {row}{})",
            if *repaired {
                ", accepted by a repair"
            } else {
                ""
            }
        ),
        State::Baselined { version } => format!("covered by the baseline {version}"),
        State::Resume { at, failed, row } => format!(
            "resumes at statement {at} of {statements} (row {row} {}), replaying the session statements before it",
            if failed.is_some() {
                "failed there"
            } else {
                "was interrupted"
            }
        ),
        State::Drift { row, .. } => format!("changed since it was applied (row {row})"),
        State::Dirty { row, statement } => {
            format!("statement {statement} was in flight when row {row} stopped")
        }
        State::Changed { row, reached } => {
            format!("statements 1-{reached} of row {row} changed since they ran")
        }
    }
}

/// The apply plan as a table.
pub fn apply_plan(doc: &ApplyDoc, styles: &Styles) -> String {
    let mut out = styles.heading(&format!(
        "Schema migration of {} for database {}, {} -> {} ({}):",
        doc.profile,
        doc.database,
        doc.from,
        doc.to,
        doc.origin.describe()
    ));
    out.push('\n');
    if doc.scripts.is_empty() {
        out.push_str("nothing to run: the versions are the same\n");
        return out;
    }
    let rows: Vec<Vec<String>> = doc
        .scripts
        .iter()
        .map(|s| {
            vec![
                s.script.file.clone(),
                s.script.statement_count.to_string(),
                s.state.word().to_string(),
                state_detail(&s.state, s.script.statement_count),
                s.script.sha256.chars().take(12).collect(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["script", "statements", "state", "plan", "sha256"],
        &rows,
        |i, c| match (i, c) {
            (2, "drift" | "dirty" | "changed") => styles.bad(c),
            (2, "failed" | "interrupted") => styles.warn(c),
            _ => c.to_string(),
        },
    ));
    out.push_str(&format!("Backup relied on: {}\n", doc.backup));
    out
}

/// One line about a finished script run.
pub fn run_line(script: &Script, run: &ScriptRun, styles: &Styles) -> String {
    match run {
        ScriptRun::Done {
            from,
            replayed,
            statements,
            seconds,
            ..
        } => {
            let resumed = if *from > 1 {
                format!(
                    " (resumed at statement {from}; statements 1-{} had committed before, {replayed} session statements replayed)",
                    from - 1
                )
            } else {
                String::new()
            };
            format!(
                "{} {}: statements {from}-{statements} of {statements} ran in {seconds:.2}s{resumed}",
                styles.good("applied"),
                script.file
            )
        }
        ScriptRun::Failed {
            statement,
            line,
            text,
            error,
            committed,
            replaying,
            ..
        } => {
            let n = script.statements.len();
            let committed_text = if *committed == 0 {
                "no statement of it is recorded as committed".to_string()
            } else {
                format!("statements 1-{committed} are recorded as committed")
            };
            format!(
                "{} {}: statement {statement} of {n} (line {line}: {text}){} failed: {error}\n  {committed_text}; statements after {statement} did not run.\n  Fix the cause (or the script) and run apply again: it resumes at statement {}.",
                styles.bad("failed"),
                script.file,
                if *replaying {
                    ", replayed for the resume,"
                } else {
                    ""
                },
                committed + 1,
            )
        }
    }
}

/// A script in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptStatus {
    pub file: String,
    pub from: String,
    pub to: String,
    pub sha256: String,
    pub statements: usize,
    pub state: State,
}

/// The `status` document.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDoc {
    pub profile: String,
    pub database: String,
    pub place: String,
    pub history_table: bool,
    /// The version the history says the schema is at.
    pub version: Option<String>,
    pub scripts: Vec<ScriptStatus>,
    /// Who holds the migration lock now.
    pub lock: Option<Holder>,
    pub rows: Vec<Row>,
}

/// `status` as tables.
pub fn status(doc: &StatusDoc, styles: &Styles) -> String {
    let mut out = styles.heading(&format!(
        "Database {} ({}) of {}: {}",
        doc.database,
        doc.place,
        doc.profile,
        match (&doc.version, doc.history_table) {
            (Some(v), _) => format!("schema at {v} by its history"),
            (None, true) => "no script applied yet".to_string(),
            (None, false) => "no history table (never migrated by this tool)".to_string(),
        }
    ));
    out.push('\n');
    let rows: Vec<Vec<String>> = doc
        .scripts
        .iter()
        .map(|s| {
            vec![
                s.file.clone(),
                s.from.clone(),
                s.to.clone(),
                s.state.word().to_string(),
                match &s.state {
                    State::Pending => "not run".to_string(),
                    other => state_detail(other, s.statements),
                },
            ]
        })
        .collect();
    out.push_str(&table(
        &["script", "from", "to", "state", "detail"],
        &rows,
        |i, c| match (i, c) {
            (3, "drift" | "dirty" | "changed") => styles.bad(c),
            (3, "failed" | "interrupted") => styles.warn(c),
            (3, "applied" | "baselined") => styles.good(c),
            _ => c.to_string(),
        },
    ));
    match &doc.lock {
        Some(h) => out.push_str(&format!(
            "Lock: held by connection {} ({}@{}, busy for {}s)\n",
            h.connection, h.user, h.host, h.seconds
        )),
        None => out.push_str("Lock: free\n"),
    }
    if !doc.rows.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = doc
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.kind.as_str().to_string(),
                    r.script.clone(),
                    r.started.clone(),
                    match (&r.finished, r.success) {
                        (Some(_), true) => "success".to_string(),
                        (Some(_), false) => "failed".to_string(),
                        (None, _) => "unfinished".to_string(),
                    },
                    format!(
                        "{}/{}{}",
                        r.reached,
                        r.statements,
                        r.in_flight
                            .map(|k| format!(" ({k} in flight)"))
                            .unwrap_or_default()
                    ),
                    r.installed_by.clone(),
                    r.reason
                        .clone()
                        .or_else(|| r.error.clone())
                        .or_else(|| r.backup.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "id", "kind", "script", "started", "result", "reached", "by", "note",
            ],
            &rows,
            |_, c| c.to_string(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fate_plan_reads_well() {
        let all = crate::scripts::load(&Origin::Embedded { dir: "fate".into() }).unwrap();
        let from = Version::parse("1.7.2").unwrap();
        let to = Version::parse("v1.9.0").unwrap();
        let chain = crate::scripts::chain(&all, &from, &to).unwrap();
        let doc = PlanDoc {
            profile: "fate".into(),
            database: "eggroll_meta".into(),
            from: from.canonical(),
            to: to.canonical(),
            origin: Origin::Embedded { dir: "fate".into() },
            scripts: chain.iter().map(ScriptDoc::new).collect(),
        };
        let text = plan(&doc, &Styles::plain());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Schema scripts of fate for database eggroll_meta, 1.7.2 -> 1.9.0 (built in (sql/fate/)):"
        );
        assert!(
            lines[1].starts_with("SCRIPT            FROM    TO      STATEMENTS   SHA256"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("1.7.2-1.8.0.sql   1.7.2   1.8.0   9            "),
            "{text}"
        );
        assert!(
            lines[3].starts_with("1.8.0-1.9.0.sql   1.8.0   1.9.0   21           "),
            "{text}"
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["scripts"][1]["statement_count"], 21);
        assert_eq!(json["scripts"][1]["statements"][2]["kind"], "effect");
        assert_eq!(
            json["scripts"][1]["statements"][2]["summary"],
            "EXECUTE fate_stmt"
        );
        assert_eq!(json["origin"]["embedded"]["dir"], "fate");
    }
}
