//! What the commands print: plans, runs and status as tables for people, and the same
//! documents as JSON or YAML for scripts.

use serde::Serialize;
use upgrade_shared::output::{Styles, table};
use upgrade_shared::version::Version;

use crate::commands::Setup;
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
