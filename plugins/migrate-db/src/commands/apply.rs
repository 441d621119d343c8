//! `apply`: checks everything first (backup, lock, history, drift, dirty rows), prints the
//! plan, asks, then runs the chain statement by statement on one session holding the lock, and
//! reads the history back to verify it before saying it is done.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use upgrade_shared::exit;
use upgrade_shared::output::{self, Format};

use crate::backup::{self, Backup};
use crate::client::Client;
use crate::db::Db;
use crate::decide;
use crate::fingerprint;
use crate::history;
use crate::render::{self, ApplyDoc};
use crate::runner::{self, Context, ScriptRun};
use crate::scripts;
use crate::{Args, Target};

/// The flags of `apply`.
pub struct Options<'a> {
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub backup: Option<&'a Path>,
    pub yes: bool,
    pub dry_run: bool,
}

pub async fn run(args: &Args, target: &Target, opts: Options<'_>) -> anyhow::Result<u8> {
    let setup = super::setup(args, target)?;
    let to = super::version(&setup.profile, "to", opts.to)?;
    let from = opts
        .from
        .map(|f| super::version(&setup.profile, "from", f))
        .transpose()?;
    let (kube, namespace) = args.kube.client().await?;
    let running = if from.is_none() {
        super::running_version(&kube, &namespace, &setup.profile).await
    } else {
        Err(String::new())
    };
    let styles = args.output.styles();
    let backup = match opts.backup {
        Some(path) => match backup::check_file(path, &namespace, &setup.database) {
            Ok(b) => Some(b),
            Err(problems) => {
                eprintln!(
                    "refusing to apply: the backup {} cannot be relied on:",
                    path.display()
                );
                for p in problems {
                    eprintln!("  - {p}");
                }
                return Ok(exit::FINDINGS);
            }
        },
        None => None,
    };
    let db = Db::connect(&kube, &namespace, &setup).await?;
    let ctx = Context {
        database: setup.database.clone(),
        installed_by: super::who(),
        backup: backup
            .as_ref()
            .map_or_else(|| backup::NONE.to_string(), |b| b.recorded.clone()),
    };
    let work = async |client: &mut Client, h: super::History| -> anyhow::Result<u8> {
        let (t, exists, rows) = (h.table, h.exists, h.rows);
        let recorded = decide::current_version(&rows);
        let columns = if super::needs_fit(from.as_ref(), recorded.as_ref(), &running, &to) {
            Some(
                client
                    .query(
                        "reading the schema",
                        &fingerprint::columns_query(&setup.database),
                    )
                    .await?,
            )
        } else {
            None
        };
        let from = super::starting_version(
            &setup,
            from.clone(),
            recorded,
            running.clone(),
            columns,
            &to,
        )?;
        let chain = scripts::chain(&setup.scripts, &from, &to)?;
        let decision = decide::decide(&chain, &setup.scripts, &rows);
        let mut doc = ApplyDoc::new(&setup, &from, &to, &chain, &decision, &ctx.backup);
        if !decision.refusals.is_empty() {
            print_doc(args, &doc, &styles)?;
            for r in &decision.refusals {
                eprintln!("refusing to apply: {r}");
            }
            return Ok(exit::FINDINGS);
        }
        if let Some(b) = &backup {
            let stale = stale_backup(client, &setup.database, b).await?;
            if !stale.is_empty() {
                print_doc(args, &doc, &styles)?;
                eprintln!(
                    "refusing to apply: {} was written after the backup {} was taken:",
                    setup.database,
                    b.manifest_path.display()
                );
                for s in stale {
                    eprintln!("  - {s}");
                }
                eprintln!("take a new backup (kubectl upgrade-backup dump) and pass its manifest");
                return Ok(exit::FINDINGS);
            }
        }
        let todo: Vec<(usize, usize)> = decision
            .states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.start_at().map(|at| (i, at)))
            .collect();
        if args.output.format == Format::Table {
            output::print(&render::apply_plan(&doc, &styles))?;
        }
        if todo.is_empty() {
            if args.output.format != Format::Table {
                print_doc(args, &doc, &styles)?;
            }
            return Ok(exit::OK);
        }
        if opts.dry_run {
            if args.output.format != Format::Table {
                print_doc(args, &doc, &styles)?;
            }
            eprintln!("dry run: nothing changed");
            return Ok(exit::OK);
        }
        let question = format!("Change the schema of {} in {}?", setup.database, db.place());
        if !upgrade_shared::prompt::confirm(&question, opts.yes)? {
            eprintln!("nothing changed");
            return Ok(exit::FINDINGS);
        }
        if !exists {
            client
                .query(
                    "creating the history table",
                    &history::create(&setup.database),
                )
                .await?;
        }
        for (i, at) in todo {
            let script = &chain[i];
            let outcome = runner::run_script(client, script, at, &ctx, &mut |_, _| {}).await?;
            eprintln!("{}", render::run_line(script, &outcome, &styles));
            let failed = matches!(outcome, ScriptRun::Failed { .. });
            doc.runs.push(outcome);
            if failed {
                print_doc_if_machine(args, &doc, &styles)?;
                return Ok(exit::FINDINGS);
            }
        }
        // Verify from the history itself, not from what was sent.
        let rows = history::parse_rows(
            &client
                .query("reading the history back", &history::select(&t))
                .await?
                .join("\n"),
        )?;
        let after = decide::decide(&chain, &setup.scripts, &rows);
        let unfinished: Vec<String> = chain
            .iter()
            .zip(&after.states)
            .filter(|(_, s)| !s.done())
            .map(|(s, st)| format!("{} is {}", s.file, st.word()))
            .collect();
        if !unfinished.is_empty() {
            anyhow::bail!(
                "the history does not confirm the run: {}",
                unfinished.join(", ")
            );
        }
        doc.verified = true;
        print_doc_if_machine(args, &doc, &styles)?;
        if args.output.format == Format::Table {
            eprintln!(
                "{} {} is at {} (history verified)",
                styles.good("done:"),
                setup.database,
                to.canonical()
            );
        }
        Ok(exit::OK)
    };
    super::with_locked_history(args, &db, &setup.database, "apply", work).await
}

fn print_doc(
    args: &Args,
    doc: &ApplyDoc,
    styles: &upgrade_shared::output::Styles,
) -> anyhow::Result<()> {
    match args.output.format {
        Format::Table => output::print(&render::apply_plan(doc, styles)),
        format => output::print(&output::to_document(doc, format)?),
    }
}

fn print_doc_if_machine(
    args: &Args,
    doc: &ApplyDoc,
    styles: &upgrade_shared::output::Styles,
) -> anyhow::Result<()> {
    if args.output.format != Format::Table {
        print_doc(args, doc, styles)?;
    }
    Ok(())
}

/// Live tables and exact row counts against the backup's.
async fn stale_backup(
    client: &mut Client,
    database: &str,
    b: &Backup,
) -> anyhow::Result<Vec<String>> {
    let tables: Vec<String> = client
        .query("listing the tables", &backup::tables_query(database))
        .await?
        .iter()
        .map(|h| backup::unhex(h))
        .collect();
    let mut live = BTreeMap::new();
    if let Some(q) = backup::count_query(database, &tables) {
        for line in client.query("counting rows", &q).await? {
            let (name, count) = line.split_once('\t').context("a row count line")?;
            live.insert(backup::unhex(name), count.parse::<u64>()?);
        }
    }
    Ok(backup::freshness(&b.manifest, database, &live))
}
