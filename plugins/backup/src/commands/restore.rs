//! `restore FILE`: only a file that passes verification; a plan naming what is replaced; a
//! question before anything is written (`--yes`); `--dry-run`; `--quiesce` stops the
//! profile's other components (every component but the database) through the scale
//! subresource and brings them back, recorded in the journal first so that a re-run after a
//! kill scales them back to the replicas they had; row counts compared with the manifest
//! afterwards.

use std::collections::BTreeMap;

use upgrade_shared::backup_manifest::{Manifest, Mode};
use upgrade_shared::cluster::Cluster;
use upgrade_shared::journal::Journal;
use upgrade_shared::mysql::{Session, quote_ident};
use upgrade_shared::output::{self, Format};
use upgrade_shared::scale::{self, Replicas};
use upgrade_shared::{exit, prompt};

use super::verify::load;
use super::{content_problems, databases, read_manifest, row_counts, tables};
use crate::plan::{Action, Live, Refusal, RestoreStep, plan_restore, targets};
use crate::sections::Selection;
use crate::timing::Timings;
use crate::{Args, Command, DryRun, connect};

/// The journal of this plugin.
pub const JOURNAL: Journal<Entry> = Journal::new("kubectl-upgrade-backup");

/// A journal entry: writers scaled down for a restore, with the replicas to give back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub file: String,
    pub quiesced: Replicas,
    /// `quiesced` until they are back.
    pub state: String,
}

fn journal_key(pod_owner: &str) -> String {
    format!("restore.{}", pod_owner.replace('/', "."))
}

/// Runs `restore`.
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let Command::Restore {
        file,
        at,
        database,
        replace,
        quiesce,
        ..
    } = &args.command
    else {
        unreachable!("dispatched on Restore")
    };
    if let Some(d) = database {
        upgrade_shared::mysql::check_identifier("database", d)?;
    }
    let source = at.source()?;
    let profile = at.profile()?;
    if *quiesce && profile.is_none() {
        anyhow::bail!(
            "--quiesce needs --profile: the profile says which components write to the database"
        );
    }
    // The file is read (size, sha256, trailer, rows) on a thread of its own while the server
    // is asked what the restore would replace; nothing is changed before it passed.
    let mut timings = Timings::from_env();
    let manifest = read_manifest(file)?;
    let checking = tokio::task::spawn_blocking({
        let (file, manifest) = (file.clone(), manifest.clone());
        move || {
            let t = std::time::Instant::now();
            content_problems(&file, &manifest).map(|p| (p, t.elapsed()))
        }
    });
    let planned = async {
        let (client, s) = connect(args, at).await?;
        let steps = plan_steps(&s, &manifest, database.as_deref(), *replace).await?;
        Ok::<_, anyhow::Error>((client, s, steps))
    }
    .await;
    timings.lap("plan");
    // A file that fails verification is the first thing to say, whatever the server answered.
    let (problems, checked) = checking
        .await
        .map_err(|_| anyhow::anyhow!("checking {} failed", file.display()))??;
    timings.part("verification", checked);
    timings.lap("waiting-for-verification");
    if let Some(p) = problems.first() {
        return Err(Refusal(format!(
            "{} fails verification, not restoring it: {p}",
            file.display()
        ))
        .into());
    }
    drop(source);
    let (client, s, steps) = planned?;

    // Writers: the pods of every other component of the profile, by their owners.
    let cluster = Cluster {
        client: client.clone(),
        namespace: s.db.namespace.clone(),
    };
    let key = journal_key(&format!("{}/{}", s.db.namespace, s.db.pod));
    let recorded = JOURNAL.get(&cluster, &key).await?;
    let mut writers: Replicas = BTreeMap::new();
    let mut writer_pods: Vec<String> = Vec::new();
    if *quiesce && let Some(p) = &profile {
        let db_component = upgrade_shared::mysql::database_component(p).map(|c| c.name.clone());
        let mut pods = Vec::new();
        for c in p
            .components
            .iter()
            .filter(|c| Some(&c.name) != db_component.as_ref())
        {
            let ns = c
                .namespace
                .clone()
                .unwrap_or_else(|| s.db.namespace.clone());
            if ns != s.db.namespace {
                continue;
            }
            let (api, params) = (
                cluster.pods(),
                kube::api::ListParams::default().labels(&c.selector),
            );
            let list = upgrade_shared::cluster::retry(
                &format!("cannot list the pods of {}", c.name),
                || api.list(&params),
            )
            .await?;
            pods.extend(
                list.items
                    .into_iter()
                    .filter(|p| p.metadata.name.as_deref() != Some(s.db.pod.as_str())),
            );
        }
        writer_pods = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        writers = scale::owners_of(&cluster, &pods).await?;
        // After a kill the owners are at zero: the journal has the replicas to give back.
        if let Some(e) = &recorded {
            for (k, n) in &e.quiesced {
                writers.insert(k.clone(), *n);
            }
        }
    }

    let format = args.output().format;
    let plan_text = render_plan(&s, file, &steps, &writers);
    if format == Format::Table {
        output::print(&plan_text)?;
    }
    if args.dry_run != DryRun::None {
        return Ok(exit::OK);
    }
    if !prompt::confirm(
        &format!("Restore {} into pod/{}?", file.display(), s.db.pod),
        args.yes,
    )? {
        return Err(Refusal("not restoring".into()).into());
    }

    if *quiesce {
        JOURNAL
            .write(
                &cluster,
                &key,
                &Entry {
                    file: file.display().to_string(),
                    quiesced: writers.clone(),
                    state: "quiesced".into(),
                },
            )
            .await?;
        scale::scale_down(&cluster, &writers).await?;
        let timeout = args
            .timeout
            .0
            .unwrap_or(std::time::Duration::from_secs(600));
        scale::wait_pods_gone(&cluster, &writer_pods, timeout).await?;
    }
    timings.lap("confirm-and-quiesce");
    let restored = restore_all(&s, file, &manifest, &steps, &mut timings).await;
    if *quiesce {
        let back = scale::restore(&cluster, &writers).await;
        if back.is_ok() {
            JOURNAL.remove(&cluster, &key).await?;
        }
        if let Err(e) = back {
            return match restored {
                Err(r) => Err(r.context(format!("and the writers were not scaled back: {e:#}"))),
                Ok(_) => Err(e),
            };
        }
    }
    timings.print();
    let differences = restored?;
    if !differences.is_empty() {
        return Err(anyhow::anyhow!(
            "the restore finished but the rows differ from the manifest: {}",
            differences.join("; ")
        ));
    }
    let rows = manifest.total_rows();
    if format == Format::Table {
        output::print(&format!(
            "restored {} into pod/{}: {} rows, equal to the manifest\n",
            file.display(),
            s.db.pod,
            rows
        ))?;
    } else {
        let doc = serde_json::json!({
            "file": file.display().to_string(),
            "pod": s.db.pod,
            "databases": steps.iter().map(|st| serde_json::json!({"from": st.target.from, "into": st.target.into, "action": st.describe()})).collect::<Vec<_>>(),
            "rows": rows,
            "verified": true,
        });
        output::print(&output::to_document(&doc, format)?)?;
    }
    Ok(exit::OK)
}

/// Each target database's restore step, from the manifest and what the server holds now (with
/// the row counts of the tables a restore would replace).
async fn plan_steps(
    s: &Session,
    manifest: &Manifest,
    database: Option<&str>,
    replace: bool,
) -> anyhow::Result<Vec<RestoreStep>> {
    let dumped: Vec<String> = manifest.databases.iter().map(|d| d.name.clone()).collect();
    let targets = targets(&dumped, database)?;
    let existing = databases(s).await?;
    let mut steps = Vec::new();
    for t in &targets {
        let exists = existing.contains(&t.into);
        let live_tables = if exists {
            let names = tables(s, &t.into).await?;
            row_counts(s, &t.into, &names).await?
        } else {
            BTreeMap::new()
        };
        let dump_tables: Vec<String> = manifest
            .databases
            .iter()
            .find(|d| d.name == t.from)
            .map(|d| d.tables.iter().map(|x| x.name.clone()).collect())
            .unwrap_or_default();
        let live = Live {
            exists,
            tables: live_tables,
        };
        steps.push(plan_restore(
            t,
            manifest.mode,
            &dump_tables,
            &live,
            replace,
        )?);
    }
    Ok(steps)
}

async fn restore_all(
    s: &Session,
    file: &std::path::Path,
    manifest: &Manifest,
    steps: &[RestoreStep],
    timings: &mut Timings,
) -> anyhow::Result<Vec<String>> {
    let mut differences = Vec::new();
    for step in steps {
        let into = quote_ident(&step.target.into);
        match &step.action {
            Action::Create => {
                s.query(&format!("CREATE DATABASE {into};")).await?;
            }
            Action::Replace { .. } => {
                s.query(&format!("DROP DATABASE {into}; CREATE DATABASE {into};"))
                    .await?;
            }
            Action::ReplaceData { tables, .. } => {
                let mut sql = String::from("SET FOREIGN_KEY_CHECKS=0;\n");
                for t in tables {
                    sql.push_str(&format!("DELETE FROM {into}.{};\n", quote_ident(t)));
                }
                s.query(&sql).await?;
            }
            Action::LoadEmpty | Action::LoadData => {}
        }
        timings.lap("prepare");
        let rename = (step.target.from != step.target.into || manifest.mode == Mode::Full)
            .then(|| step.target.into.clone());
        load(
            s,
            file,
            manifest,
            Selection {
                only: Some(step.target.from.clone()),
                into: rename,
            },
        )
        .await?;
        timings.lap("load");
        let Some(db) = manifest
            .databases
            .iter()
            .find(|d| d.name == step.target.from)
        else {
            continue;
        };
        let names: Vec<String> = db.tables.iter().map(|t| t.name.clone()).collect();
        let counts = row_counts(s, &step.target.into, &names).await?;
        timings.lap("row-counts");
        for t in &db.tables {
            let n = counts.get(&t.name).copied().unwrap_or(0);
            if n != t.rows {
                differences.push(format!(
                    "{}.{} has {n} rows, the manifest says {}",
                    step.target.into, t.name, t.rows
                ));
            }
        }
    }
    Ok(differences)
}

fn render_plan(
    s: &Session,
    file: &std::path::Path,
    steps: &[RestoreStep],
    writers: &Replicas,
) -> String {
    let mut out = format!(
        "Restore plan\n  file:       {} (verified)\n  into:       pod/{} container {} in namespace {}\n",
        file.display(),
        s.db.pod,
        s.db.container,
        s.db.namespace
    );
    for st in steps {
        out.push_str(&format!("  step:       {}\n", st.describe()));
    }
    for (k, n) in writers {
        out.push_str(&format!(
            "  quiesce:    {k} to 0 replicas meanwhile, back to {n} afterwards\n"
        ));
    }
    out
}
