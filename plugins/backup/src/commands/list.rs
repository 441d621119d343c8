//! `list DIR`: every dump in a directory with its manifest and whether it still verifies
//! (the file checked again, not the manifest's word taken), and the `.partial` files that
//! failed.

use std::path::{Path, PathBuf};

use serde::Serialize;
use upgrade_shared::backup_manifest::{Manifest, Mode};
use upgrade_shared::exit;
use upgrade_shared::output::{self, Format};

use super::{file_problems, human};
use crate::Args;

#[derive(Debug, Serialize)]
struct Entry {
    file: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    databases: Vec<String>,
    mode: Option<Mode>,
    bytes: u64,
    rows: u64,
    finished: Option<String>,
}

fn is_dump_name(name: &str) -> bool {
    [".sql", ".sql.gz", ".sql.zst", ".gz", ".zst"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Runs `list`.
pub fn run(args: &Args, dir: &Path) -> anyhow::Result<u8> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read directory {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in &names {
        let path: PathBuf = dir.join(name);
        if let Some(dump) = name.strip_suffix(".manifest.json") {
            if dump.ends_with(".partial") {
                continue;
            }
            if !names.iter().any(|n| n == dump) {
                let m = Manifest::read(&path).ok();
                out.push(entry(
                    dump,
                    "missing",
                    Some("the manifest's file is gone".into()),
                    m.as_ref(),
                ));
            }
            continue;
        }
        if name.ends_with(".partial") {
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let mut e = entry(
                name,
                "failed",
                Some("a dump that failed verification".into()),
                None,
            );
            e.bytes = bytes;
            out.push(e);
            continue;
        }
        if !is_dump_name(name) {
            continue;
        }
        match file_problems(&path) {
            Ok((m, problems)) if problems.is_empty() => {
                out.push(entry(name, "verified", None, Some(&m)))
            }
            Ok((m, problems)) => out.push(entry(
                name,
                "changed",
                problems.into_iter().next(),
                Some(&m),
            )),
            Err(e) => {
                let mut x = entry(name, "unverified", Some(format!("{e:#}")), None);
                x.bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                out.push(x);
            }
        }
    }
    let all_good = out.iter().all(|e| e.state == "verified");
    match args.output().format {
        Format::Table => {
            let rows: Vec<Vec<String>> = out
                .iter()
                .map(|e| {
                    vec![
                        e.file.clone(),
                        e.state.clone(),
                        e.databases.join(","),
                        match e.mode {
                            Some(Mode::Full) => "full".into(),
                            Some(Mode::DataOnly) => "data-only".into(),
                            None => "-".into(),
                        },
                        human(e.bytes),
                        e.rows.to_string(),
                        e.finished.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            let styles = args.output().styles();
            let text = output::table(
                &[
                    "file",
                    "state",
                    "databases",
                    "mode",
                    "size",
                    "rows",
                    "finished",
                ],
                &rows,
                |col, cell| match (col, cell) {
                    (1, "verified") => styles.good(cell),
                    (1, _) => styles.bad(cell),
                    _ => cell.to_string(),
                },
            );
            output::print(&text)?;
            for e in out.iter().filter(|e| e.state != "verified") {
                if let Some(p) = &e.problem {
                    output::print(&format!("{}: {p}\n", e.file))?;
                }
            }
        }
        f => output::print(&output::to_document(&out, f)?)?,
    }
    Ok(if all_good { exit::OK } else { exit::FINDINGS })
}

fn entry(file: &str, state: &str, problem: Option<String>, m: Option<&Manifest>) -> Entry {
    Entry {
        file: file.to_string(),
        state: state.to_string(),
        problem,
        databases: m
            .map(|m| m.databases.iter().map(|d| d.name.clone()).collect())
            .unwrap_or_default(),
        mode: m.map(|m| m.mode),
        bytes: m.map_or(0, |m| m.bytes),
        rows: m.map_or(0, Manifest::total_rows),
        finished: m.map(|m| m.finished.clone()),
    }
}
