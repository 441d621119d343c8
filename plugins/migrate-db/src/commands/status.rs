//! `status`: every script of the profile with its state from the history, the history rows,
//! and who holds the migration lock. Exit 1 when something needs a person (drift, a dirty row,
//! changed statements, a failed run).

use upgrade_shared::exit;
use upgrade_shared::output::{self, Format};

use crate::db::Db;
use crate::decide;
use crate::render::{self, ScriptStatus, StatusDoc};
use crate::runner;
use crate::{Args, Target};

pub async fn run(args: &Args, target: &Target) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    let (kube, namespace) = args.kube.client().await?;
    let db = Db::connect(&kube, &namespace, &setup).await?;
    let history = db.history().await?;
    let exists = history.is_some();
    let rows = history.unwrap_or_default();
    let lock = runner::parse_holder(
        &db.query(&runner::holder_query(&runner::lock_name(&setup.database)))
            .await?,
    );
    let mut scripts: Vec<&crate::scripts::Script> = setup.scripts.iter().collect();
    scripts.sort_by(|a, b| a.from.cmp_numbers(&b.from).then(a.to.cmp_numbers(&b.to)));
    let statuses: Vec<ScriptStatus> = scripts
        .iter()
        .map(|s| ScriptStatus {
            file: s.file.clone(),
            from: s.from.canonical(),
            to: s.to.canonical(),
            sha256: s.sha256.clone(),
            statements: s.statements.len(),
            state: decide::state(s, &rows),
        })
        .collect();
    let attention = statuses
        .iter()
        .any(|s| s.state.refused() || s.state.word() == "failed");
    let doc = StatusDoc {
        profile: setup.profile.name.clone(),
        database: setup.database.clone(),
        place: db.place(),
        history_table: exists,
        version: decide::current_version(&rows).map(|v| v.canonical()),
        scripts: statuses,
        lock,
        rows,
    };
    match args.output.format {
        Format::Table => output::print(&render::status(&doc, &args.output.styles()))?,
        format => output::print(&output::to_document(&doc, format)?)?,
    }
    Ok(if attention { exit::FINDINGS } else { exit::OK })
}
