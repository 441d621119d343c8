//! `verify FILE`: the file against its manifest (size, sha256, the SQL's sha256, trailer, rows
//! per table) and, with `--restore-test`, a restore into a scratch database on the server with
//! `COUNT(*)` and `CHECKSUM TABLE` compared to the manifest; the scratch database is dropped
//! whatever happens.

use std::path::Path;

use serde::Serialize;
use upgrade_shared::backup_manifest::{Manifest, Mode};
use upgrade_shared::exit;
use upgrade_shared::mysql::{Session, quote_ident};
use upgrade_shared::output::{self, Format};

use super::{checksums, file_problems, row_counts, scratch_name};
use crate::sections::Selection;
use crate::sqlfile;
use crate::{Args, Command, connect};

#[derive(Debug, Serialize)]
struct VerifyReport {
    file: String,
    ok: bool,
    problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_test: Option<RestoreTest>,
}

#[derive(Debug, Serialize)]
struct RestoreTest {
    pod: String,
    tables: usize,
    rows: u64,
    checksums_compared: usize,
}

/// Runs `verify`.
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let Command::Verify {
        file,
        restore_test,
        at,
        ..
    } = &args.command
    else {
        unreachable!("dispatched on Verify")
    };
    if *restore_test {
        at.source()?;
    } else if at.given() {
        anyhow::bail!("--profile, --target and -c go with --restore-test");
    }
    let (manifest, mut problems) = file_problems(file)?;
    let mut test = None;
    if *restore_test && problems.is_empty() {
        let (_client, s) = connect(args, at).await?;
        let (t, found) = restore_test_run(&s, file, &manifest).await?;
        problems.extend(found);
        test = Some(t);
    }
    let report = VerifyReport {
        file: file.display().to_string(),
        ok: problems.is_empty(),
        problems,
        restore_test: test,
    };
    match args.output().format {
        Format::Table => output::print(&render(&report, &manifest))?,
        f => output::print(&output::to_document(&report, f)?)?,
    }
    Ok(if report.ok { exit::OK } else { exit::FINDINGS })
}

fn render(r: &VerifyReport, m: &Manifest) -> String {
    if r.ok {
        let mut out = format!(
            "{}: verified ({} databases, {} rows, sha256 {})\n",
            r.file,
            m.databases.len(),
            m.total_rows(),
            m.sha256
        );
        if let Some(t) = &r.restore_test {
            out.push_str(&format!(
                "restore test on pod/{}: {} tables, {} rows and {} checksums equal to the manifest\n",
                t.pod, t.tables, t.rows, t.checksums_compared
            ));
        }
        out
    } else {
        let mut out = format!("{}: FAILED\n", r.file);
        for p in &r.problems {
            out.push_str(&format!("  {p}\n"));
        }
        out
    }
}

/// Restores each database of the dump into a scratch database and compares; returns the test's
/// summary and the differences found.
async fn restore_test_run(
    s: &Session,
    file: &Path,
    m: &Manifest,
) -> anyhow::Result<(RestoreTest, Vec<String>)> {
    let mut problems = Vec::new();
    let mut test = RestoreTest {
        pod: s.db.pod.clone(),
        tables: 0,
        rows: 0,
        checksums_compared: 0,
    };
    for db in &m.databases {
        let scratch = scratch_name("verify");
        s.query(&format!("CREATE DATABASE {};", quote_ident(&scratch)))
            .await?;
        let result = async {
            if m.mode == Mode::DataOnly {
                // Rows need the schema: the live database's own tables, copied empty.
                let sql: String = db
                    .tables
                    .iter()
                    .map(|t| {
                        format!(
                            "CREATE TABLE {}.{} LIKE {}.{};\n",
                            quote_ident(&scratch),
                            quote_ident(&t.name),
                            quote_ident(&db.name),
                            quote_ident(&t.name)
                        )
                    })
                    .collect();
                if !sql.is_empty() {
                    s.query(&sql).await?;
                }
            }
            load(
                s,
                file,
                m,
                Selection {
                    only: Some(db.name.clone()),
                    into: Some(scratch.clone()),
                },
            )
            .await?;
            let names: Vec<String> = db.tables.iter().map(|t| t.name.clone()).collect();
            let counts = row_counts(s, &scratch, &names).await?;
            let sums = checksums(s, &scratch, &names).await?;
            let mut found = Vec::new();
            for t in &db.tables {
                let n = counts.get(&t.name).copied().unwrap_or(0);
                if n != t.rows {
                    found.push(format!(
                        "{}.{} restored {n} rows, the manifest says {}",
                        db.name, t.name, t.rows
                    ));
                }
                if let Some(want) = t.checksum {
                    let got = sums.get(&t.name).copied().flatten();
                    if got != Some(want) {
                        found.push(format!(
                            "{}.{} restored with CHECKSUM TABLE {}, the manifest says {want}",
                            db.name,
                            t.name,
                            got.map_or("NULL".to_string(), |g| g.to_string())
                        ));
                    }
                }
            }
            let compared = db.tables.iter().filter(|t| t.checksum.is_some()).count();
            Ok::<_, anyhow::Error>((found, names.len(), counts.values().sum::<u64>(), compared))
        }
        .await;
        let dropped = s
            .query(&format!(
                "DROP DATABASE IF EXISTS {};",
                quote_ident(&scratch)
            ))
            .await;
        let (found, tables, rows, compared) = result?;
        dropped
            .map_err(|e| anyhow::anyhow!("the restore test left database {scratch} behind: {e}"))?;
        problems.extend(found);
        test.tables += tables;
        test.rows += rows;
        test.checksums_compared += compared;
    }
    Ok((test, problems))
}

/// Streams the selected part of a dump into the server and checks that all of it arrived and
/// the client succeeded.
pub async fn load(
    s: &Session,
    file: &Path,
    m: &Manifest,
    selection: Selection,
) -> anyhow::Result<()> {
    let (reader, thread) = sqlfile::sql_stream(file, m.compression, selection)?;
    let args = vec!["--default-character-set=utf8mb4".to_string()];
    let mut sink = tokio::io::sink();
    let finished = s
        .run(
            &s.tools.client.clone(),
            &args,
            Some(Box::new(reader)),
            &mut sink,
            &mut |_| {},
        )
        .await;
    let produced = thread
        .join()
        .map_err(|_| anyhow::anyhow!("reading {} failed", file.display()))?;
    let finished = finished?;
    finished.check(&s.db.pod, "loading the dump")?;
    produced.map_err(|e| anyhow::anyhow!("reading {} failed: {e}", file.display()))?;
    Ok(())
}
