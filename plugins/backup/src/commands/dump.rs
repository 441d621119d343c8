//! `dump`: plan from the server's own answers, then stream the dump through exec into the
//! local file (and/or onto the pod's volume), checking everything a dump can prove about
//! itself before it is called done.
//!
//! In the pod, [`crate::pod_dump`]'s script runs the dump program, sends its bytes to the
//! exec's stdout (in 1 MiB writes where the container's `dd` can), to the pod's own sha256
//! and, with `--to-volume`, to `PATH.partial`, and reports the dump program's own exit status
//! and the digests on stderr ([`Report`]). Here every byte goes through the inspector
//! (sha256, rows, trailer) and, with `--output`, into `FILE.partial`, on threads of their own
//! ([`DumpSink`]). Only when the exit status is 0, the trailer is there, both digests (three
//! with a volume copy, re-read from disk) agree and the text ended outside any statement, are
//! the files renamed into place and their manifests written. Anything else leaves them as
//! `.partial` and fails with one line.
//!
//! `CHECKSUM TABLE` brackets the dump: a table whose checksum is the same in a snapshot from
//! before the dump's own and in one from after it was not written to meanwhile, and its
//! checksum goes into the manifest. InnoDB tables are checksummed in snapshots while the dump
//! streams, others before and after it (see `run`).
//!
//! `KUBECTL_UPGRADE_BACKUP_TIMINGS=1` prints the time of each phase at the end
//! ([`crate::timing`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use upgrade_shared::backup_manifest::{
    self as bm, Checks, Database, Location, Manifest, Table, Tool, manifest_path, partial_path,
};
use upgrade_shared::exec::{self, Command as ExecCommand, Input};
use upgrade_shared::mysql::Session;
use upgrade_shared::output::{self, Format};
use upgrade_shared::progress::Progress;
use upgrade_shared::{exit, prompt};

use super::{checksums, databases, human, snapshot_checksums, tables_with_engines};
use crate::plan::{DumpPlan, DumpRequest, check_volume_path, plan_dump};
use crate::pod_dump::{Report, dump_script};
use crate::sqlfile::DumpSink;
use crate::timing::Timings;
use crate::{Args, Command, DryRun, connect};

/// Runs `dump`.
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let Command::Dump {
        at,
        databases: wanted,
        all_databases,
        data_only,
        output: out_file,
        to_volume,
        compress,
        ..
    } = &args.command
    else {
        unreachable!("dispatched on Dump")
    };
    let req = DumpRequest {
        databases: wanted.clone(),
        all_databases: *all_databases,
        data_only: *data_only,
        output: out_file.as_ref().map(|p| p.display().to_string()),
        to_volume: to_volume.clone(),
        compress: compress.map(Into::into),
    };
    // Bad input is refused before anything is contacted.
    for d in wanted {
        upgrade_shared::mysql::check_identifier("database", d)?;
    }
    if req.output.is_none() && req.to_volume.is_none() {
        anyhow::bail!("name where the dump goes: --output FILE, --to-volume PATH, or both");
    }
    if let Some(f) = out_file
        && f.is_dir()
    {
        anyhow::bail!("--output {} is a directory; name a file", f.display());
    }
    at.source()?;
    let mut timings = Timings::from_env();
    let (_client, s) = connect(args, at).await?;
    timings.lap("connect");
    // Three independent round trips to the pod, at once.
    let (server, existing, dump_version) = tokio::try_join!(
        async { Ok::<_, anyhow::Error>(s.server().await?) },
        databases(&s),
        tool_version(&s)
    )?;
    let plan = plan_dump(&req, s.db.database.as_ref(), &server, &existing)?;
    if let Some(v) = &plan.to_volume {
        check_volume_path(v, &volume_mounts(&s).await?)?;
    }
    let mut listed: Vec<(String, Vec<String>)> = Vec::new();
    // Tables whose engine reads from a consistent snapshot (InnoDB) and the others.
    let mut in_snapshot: Vec<(String, String)> = Vec::new();
    let mut live: Vec<(String, Vec<String>)> = Vec::new();
    for db in &plan.databases {
        let ts: Vec<(String, String)> = tables_with_engines(&s, db)
            .await?
            .into_iter()
            .filter(|(t, _)| !plan.ignored.contains(&format!("{db}.{t}")))
            .collect();
        let (mvcc, other): (Vec<_>, Vec<_>) = ts
            .iter()
            .cloned()
            .partition(|(_, engine)| engine.eq_ignore_ascii_case("InnoDB"));
        in_snapshot.extend(mvcc.into_iter().map(|(t, _)| (db.clone(), t)));
        live.push((db.clone(), other.into_iter().map(|(t, _)| t).collect()));
        listed.push((db.clone(), ts.into_iter().map(|(t, _)| t).collect()));
    }
    timings.lap("plan");
    let format = args.output().format;
    if format == Format::Table {
        output::print(&render_plan(&s, &plan, &listed))?;
    }
    if args.dry_run != DryRun::None {
        return Ok(exit::OK);
    }
    if let Some(f) = out_file
        && f.exists()
        && !prompt::confirm(&format!("{} exists. Replace it?", f.display()), args.yes)?
    {
        anyhow::bail!("not replacing {}", f.display());
    }

    // CHECKSUM TABLE brackets the dump: a table whose checksum is the same in a snapshot taken
    // before the dump's own and in one taken after it was not written to in between, so the
    // dump holds exactly that content and the checksum goes into the manifest.
    //
    // Tables of other engines are read live, so they are checksummed before the dump starts
    // and after it ended. InnoDB tables are read from a snapshot (MVCC), which lets their
    // checksums run while the dump streams instead of adding two full reads to its time:
    // - "before": a transaction takes its snapshot with START TRANSACTION WITH CONSISTENT
    //   SNAPSHOT, which InnoDB establishes at once, and the dump starts only after the server
    //   confirmed it; the CHECKSUM TABLE statements that follow in that transaction read that
    //   snapshot, however long they take;
    // - "after": another transaction starts only once the dump's text shows that the dump's
    //   own snapshot exists (its first USE line, written after mariadb-dump's START
    //   TRANSACTION WITH CONSISTENT SNAPSHOT), or once the dump ended.
    // Both snapshots bracket the dump's, as the reads before and after it did.
    let before_live = table_checksums(&s, &live).await?;
    timings.lap("checksums-before");
    let dump_snapshot = Arc::new(tokio::sync::Notify::new());
    let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
    let partial = out_file.as_deref().map(partial_path);
    let progress = Progress::bytes(&format!("dumping from pod/{}", s.db.pod), None, format);
    let mut sink = DumpSink::new(
        partial.as_deref(),
        plan.compress,
        plan.databases.first().map(String::as_str),
        Some(progress),
        Some(dump_snapshot.clone()),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot create {}: {e}",
            partial.as_deref().unwrap_or(Path::new("-")).display()
        )
    })?;
    let mut report = Report::default();
    let mut script_args = vec![plan.to_volume.clone().unwrap_or_else(|| "-".into())];
    script_args.extend(plan.args());
    let snapshot_sums = async {
        if in_snapshot.is_empty() {
            let _ = taken_tx.send(());
            return Ok((Sums::new(), Sums::new(), Duration::ZERO, Duration::ZERO));
        }
        let t = Instant::now();
        let before = snapshot_checksums(&s, &in_snapshot, Some(taken_tx)).await?;
        let took_before = t.elapsed();
        dump_snapshot.notified().await;
        let t = Instant::now();
        let after = snapshot_checksums(&s, &in_snapshot, None).await?;
        Ok::<_, anyhow::Error>((before, after, took_before, t.elapsed()))
    };
    let stream = async {
        // Without the "before" snapshot (its query failed) there is no dump to bracket.
        taken_rx.await.ok()?;
        let started = jiff::Timestamp::now();
        let t = Instant::now();
        let ran = s
            .run_script(
                &dump_script(),
                &s.tools.dump.clone(),
                &script_args,
                None,
                &mut sink,
                &mut |l| report.line(l),
            )
            .await;
        // The dump is over: a snapshot taken from now on is after its own.
        dump_snapshot.notify_one();
        Some((started, ran, jiff::Timestamp::now(), t.elapsed()))
    };
    let (sums, streamed) = tokio::join!(snapshot_sums, stream);
    let sunk = sink.finish(&mut timings);
    let Some((started, ran, finished_at, streamed)) = streamed else {
        // The checksum's error says why the dump never started.
        sums?;
        anyhow::bail!("the dump did not start");
    };
    timings.part("stream", streamed);
    timings.lap("stream+snapshot-checksums");
    let kept = || match (&partial, &plan.to_volume) {
        (Some(p), Some(v)) => format!(
            "; kept as {} and {v}.partial in pod/{}",
            p.display(),
            s.db.pod
        ),
        (Some(p), None) => format!("; kept as {}", p.display()),
        (None, Some(v)) => format!("; kept as {v}.partial in pod/{}", s.db.pod),
        (None, None) => String::new(),
    };
    // A file that could not be written is also why the stream stopped: say that first.
    let (finished, (summary, stored)) = match (ran, sunk) {
        (_, Err(e)) => anyhow::bail!(
            "the dump failed: cannot write {}: {e}{}",
            partial.as_deref().unwrap_or(Path::new("-")).display(),
            kept()
        ),
        (Err(e), Ok(_)) => anyhow::bail!("the dump failed: {e}{}", kept()),
        (Ok(f), Ok(done)) => (f, done),
    };
    let exit_status = report.dump_exit.unwrap_or(finished.code);
    let mut problems: Vec<String> = Vec::new();
    problems.extend(report.failure(&s.tools.dump, finished.code, &finished.message));
    if !summary.trailer {
        problems.push(format!(
            "the dump does not end with '-- Dump completed' (last line: {:?})",
            summary.last_line
        ));
    }
    if !summary.complete {
        problems.push("the dump ends inside a statement".into());
    }
    let pod_ok = report.pod_sha256.as_deref() == Some(summary.sha256.as_str());
    if problems.is_empty() && !pod_ok {
        problems.push(format!(
            "sha256 differs: {} here, {} in the pod",
            summary.sha256,
            report.pod_sha256.as_deref().unwrap_or("none")
        ));
    }
    if problems.is_empty()
        && plan.to_volume.is_some()
        && report.volume_sha256.as_deref() != Some(summary.sha256.as_str())
    {
        problems.push(format!(
            "the file on the volume has sha256 {}, the dump {}",
            report.volume_sha256.as_deref().unwrap_or("none"),
            summary.sha256
        ));
    }
    if let Some(first) = problems.first() {
        anyhow::bail!("the dump failed: {first}{}", kept());
    }

    let (mut before, mut after, took_before, took_after) = sums?;
    timings.part("checksums-snapshot-before", took_before);
    timings.part("checksums-snapshot-after", took_after);
    before.extend(before_live);
    after.extend(table_checksums(&s, &live).await?);
    timings.lap("checksums-after");
    let mut dbs = Vec::new();
    for (db, ts) in &listed {
        let mut names: Vec<String> = ts.clone();
        for (d, t) in summary.rows.keys() {
            if d == db && !names.contains(t) && !plan.ignored.contains(&format!("{db}.{t}")) {
                names.push(t.clone());
            }
        }
        names.sort();
        let tables = names
            .into_iter()
            .map(|t| {
                let key = (db.clone(), t.clone());
                let unchanged = match (before.get(&key), after.get(&key)) {
                    (Some(Some(a)), Some(Some(b))) if a == b => Some(*a),
                    _ => None,
                };
                Table {
                    rows: summary.rows.get(&key).copied().unwrap_or(0),
                    name: t,
                    checksum: unchanged,
                }
            })
            .collect();
        dbs.push(Database {
            name: db.clone(),
            tables,
        });
    }
    let file_name = out_file
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            plan.to_volume
                .as_ref()
                .map(|v| v.rsplit('/').next().unwrap_or(v).to_string())
        })
        .unwrap_or_default();
    let stored_or_sql = stored.clone().unwrap_or(crate::sqlfile::Stored {
        bytes: summary.bytes,
        sha256: summary.sha256.clone(),
    });
    let manifest = Manifest {
        format: bm::FORMAT,
        file: file_name,
        location: Location {
            local: out_file.as_ref().map(|p| absolute(p).display().to_string()),
            volume: plan.to_volume.clone(),
        },
        mode: plan.mode,
        compression: plan.compress,
        bytes: stored_or_sql.bytes,
        sha256: stored_or_sql.sha256.clone(),
        sql_bytes: summary.bytes,
        sql_sha256: summary.sha256.clone(),
        server: server.clone(),
        databases: dbs,
        ignored_tables: plan.ignored.clone(),
        flags: plan.args(),
        rows_from: "dump".into(),
        namespace: s.db.namespace.clone(),
        pod: s.db.pod.clone(),
        container: s.db.container.clone(),
        started: started.to_string(),
        finished: finished_at.to_string(),
        tool: Tool {
            name: "kubectl-upgrade-backup".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            dump: s.tools.dump.clone(),
            dump_version,
        },
        checks: Checks {
            exit_status,
            trailer: summary.trailer,
            pod_sha256: pod_ok,
            rows_counted: summary.complete,
        },
        verified: true,
    };
    if let Some(v) = &plan.to_volume {
        // A manifest for the copy on the volume: its own sizes (plain SQL).
        let mut on_volume = manifest.clone();
        on_volume.compression = None;
        on_volume.bytes = summary.bytes;
        on_volume.sha256 = summary.sha256.clone();
        on_volume.file = v.rsplit('/').next().unwrap_or(v).to_string();
        finish_on_volume(&s, v, &on_volume).await?;
    }
    if let (Some(f), Some(p)) = (out_file, &partial) {
        manifest.write(&manifest_path(f))?;
        std::fs::rename(p, f).map_err(|e| {
            anyhow::anyhow!("cannot rename {} to {}: {e}", p.display(), f.display())
        })?;
    }
    timings.lap("manifest");
    timings.print();
    match format {
        Format::Table => output::print(&render_done(&manifest, out_file.as_deref()))?,
        other => output::print(&output::to_document(&manifest, other)?)?,
    }
    Ok(exit::OK)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Mount paths of the database container.
async fn volume_mounts(s: &Session) -> anyhow::Result<Vec<String>> {
    let pod = s.pods.get(&s.db.pod).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot read pod/{}: {}",
            s.db.pod,
            upgrade_shared::api::describe(&e)
        )
    })?;
    Ok(pod
        .spec
        .map(|sp| sp.containers)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.name == s.db.container)
        .flat_map(|c| c.volume_mounts.unwrap_or_default())
        .map(|m| m.mount_path)
        .collect())
}

/// The dump program's `--version` line.
async fn tool_version(s: &Session) -> anyhow::Result<String> {
    let cmd = ExecCommand::new(
        &s.db.pod,
        Some(&s.db.container),
        vec![s.tools.dump.clone(), "--version".into()],
    );
    let out = exec::capture(
        &s.pods,
        &cmd,
        Input::None,
        "asking the dump program its version",
    )
    .await?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

use super::Sums;

async fn table_checksums(s: &Session, listed: &[(String, Vec<String>)]) -> anyhow::Result<Sums> {
    let mut out = BTreeMap::new();
    for (db, ts) in listed {
        for (t, c) in checksums(s, db, ts).await? {
            out.insert((db.clone(), t), c);
        }
    }
    Ok(out)
}

/// Renames the verified file on the volume into place and writes its manifest beside it.
async fn finish_on_volume(s: &Session, path: &str, manifest: &Manifest) -> anyhow::Result<()> {
    let script = r#"set -e
cat > "$1.manifest.json.tmp"
mv -- "$1.manifest.json.tmp" "$1.manifest.json"
mv -- "$1.partial" "$1"
sync"#;
    let cmd = ExecCommand::new(
        &s.db.pod,
        Some(&s.db.container),
        vec![
            "sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            path.into(),
        ],
    );
    exec::capture(
        &s.pods,
        &cmd,
        Input::Bytes(manifest.to_json().into_bytes()),
        &format!("putting {path} in place"),
    )
    .await?;
    Ok(())
}

fn render_plan(s: &Session, plan: &DumpPlan, listed: &[(String, Vec<String>)]) -> String {
    let mut out = format!(
        "Dump plan\n  from:       pod/{} container {} in namespace {} ({} as {})\n  mode:       {}\n",
        s.db.pod,
        s.db.container,
        s.db.namespace,
        s.tools.dump,
        s.login_origin(),
        match plan.mode {
            bm::Mode::Full => "full (schema, rows, routines, events, triggers)",
            bm::Mode::DataOnly => "data only (rows into an existing schema)",
        }
    );
    for (db, ts) in listed {
        out.push_str(&format!("  database:   {db} ({} tables)\n", ts.len()));
    }
    for t in &plan.ignored {
        out.push_str(&format!("  left out:   {t}\n"));
    }
    if let Some(o) = &plan.output {
        let c = plan
            .compress
            .map(|c| format!(" ({c:?} compressed)").to_lowercase())
            .unwrap_or_default();
        out.push_str(&format!("  to:         {o}{c}\n"));
    }
    if let Some(v) = &plan.to_volume {
        out.push_str(&format!("  on volume:  {v} in pod/{}\n", s.db.pod));
    }
    out.push_str(&format!("  options:    {}\n", plan.flags.join(" ")));
    out
}

fn render_done(m: &Manifest, file: Option<&Path>) -> String {
    let tables: usize = m.databases.iter().map(|d| d.tables.len()).sum();
    let mut out = format!(
        "dumped {} ({tables} tables, {} rows) from pod/{}: {} of SQL",
        m.databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        m.total_rows(),
        m.pod,
        human(m.sql_bytes)
    );
    if let Some(f) = file {
        out.push_str(&format!(
            "\n  {}: {} sha256 {}",
            f.display(),
            human(m.bytes),
            m.sha256
        ));
    }
    if let Some(v) = &m.location.volume {
        out.push_str(&format!(
            "\n  {v} in pod/{}: sha256 {}",
            m.pod, m.sql_sha256
        ));
    }
    out.push_str("\nverified: exit status 0, trailer present, sha256 equal here and in the pod, rows counted\n");
    out
}
