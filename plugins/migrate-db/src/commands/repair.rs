//! `repair --script NAME --reason TEXT`: after a person has looked at the database, accept a
//! dirty, drifted or changed script. Nothing in the schema changes; a `repair` row records the
//! script's current sha256, who and why, and the next `apply` goes on from there (a dirty
//! statement runs again).

use upgrade_shared::exit;

use crate::client::Client;
use crate::db::Db;
use crate::decide::{self, State};
use crate::history::{self, NewRow, RowKind};
use crate::runner::count;
use crate::{Args, Target};

pub async fn run(
    args: &Args,
    target: &Target,
    script: &str,
    reason: &str,
    yes: bool,
) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    if reason.trim().is_empty() {
        anyhow::bail!("--reason must say why it is right to go on");
    }
    let Some(script) = setup.scripts.iter().find(|s| s.file == script).cloned() else {
        let known: Vec<&str> = setup.scripts.iter().map(|s| s.file.as_str()).collect();
        anyhow::bail!(
            "--script {script}: no such script (scripts: {})",
            known.join(", ")
        );
    };
    let (kube, namespace) = args.kube.client().await?;
    let db = Db::connect(&kube, &namespace, &setup).await?;
    let who = super::who();
    let work = async |client: &mut Client, h: super::History| -> anyhow::Result<u8> {
        let (t, rows) = (h.table, h.rows);
        let state = decide::state(&script, &rows);
        let (what, run_row) = match &state {
            State::Dirty { row, statement } => (
                format!(
                    "statement {statement} of {} was in flight; the next apply runs it again",
                    script.file
                ),
                *row,
            ),
            State::Drift { row, recorded } => (
                format!(
                    "{} is accepted with sha256 {} (applied as {recorded})",
                    script.file, script.sha256
                ),
                *row,
            ),
            State::Changed { row, reached } => (
                format!(
                    "{} is accepted with its changed statements 1-{reached}; the next apply resumes after them",
                    script.file
                ),
                *row,
            ),
            other => {
                eprintln!("nothing to repair: {} is {}", script.file, other.word());
                return Ok(exit::FINDINGS);
            }
        };
        let run = rows.iter().find(|r| r.id == run_row).cloned();
        println!(
            "Repair of {} in {} (history row {run_row}): {what}",
            script.file, setup.database
        );
        println!("Recorded as done by {who}, because: {reason}");
        if args.dry_run.is_dry() {
            eprintln!("dry run: nothing recorded");
            return Ok(exit::OK);
        }
        if !upgrade_shared::prompt::confirm("Record this repair?", yes)? {
            eprintln!("nothing changed");
            return Ok(exit::FINDINGS);
        }
        let reached = run.as_ref().map_or(0, |r| r.reached);
        let insert = history::insert(
            &t,
            &NewRow {
                kind: RowKind::Repair,
                script: &script.file,
                version_from: &script.from.canonical(),
                version_to: &script.to.canonical(),
                sha256: &script.sha256,
                statements: count(script.statements.len()),
                first_statement: run.as_ref().map_or(1, |r| r.first_statement),
                reached,
                reached_sha256: &script.prefix_sha256(reached as usize),
                finished: true,
                backup: run.as_ref().and_then(|r| r.backup.as_deref()),
                installed_by: &who,
                reason: Some(reason),
            },
        );
        client.query("recording the repair", &insert).await?;
        let rows = history::parse_rows(
            &client
                .query("reading the history back", &history::select(&t))
                .await?
                .join("\n"),
        )?;
        let now = decide::state(&script, &rows);
        if now.refused() {
            anyhow::bail!(
                "the history does not confirm the repair: {} is still {}",
                script.file,
                now.word()
            );
        }
        println!("repaired: {} is now {}", script.file, now.word());
        Ok(exit::OK)
    };
    super::with_locked_history(args, &db, &setup.database, "repair", work).await
}
