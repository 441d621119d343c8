//! One module per subcommand, plus the server reads and file checks more than one of them
//! uses.

pub mod dump;
pub mod list;
pub mod restore;
pub mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use upgrade_shared::backup_manifest::{Manifest, manifest_path};
use upgrade_shared::mysql::{Session, quote_ident, quote_str};

use crate::sqlfile;

pub use upgrade_shared::quantity::human;

/// The server's databases.
pub async fn databases(s: &Session) -> anyhow::Result<Vec<String>> {
    Ok(
        s.query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME;")
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect(),
    )
}

/// The base tables of a database.
pub async fn tables(s: &Session, db: &str) -> anyhow::Result<Vec<String>> {
    Ok(s
        .query(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;",
            quote_str(db)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Exact row counts (`COUNT(*)`) of tables of one database.
pub async fn row_counts(
    s: &Session,
    db: &str,
    tables: &[String],
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    for chunk in tables.chunks(200) {
        let sql = chunk
            .iter()
            .map(|t| {
                format!(
                    "SELECT {}, COUNT(*) FROM {}.{}",
                    quote_str(t),
                    quote_ident(db),
                    quote_ident(t)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in s.query(&format!("{sql};")).await? {
            if let [Some(t), Some(n)] = row.as_slice() {
                out.insert(t.clone(), n.parse().unwrap_or(0));
            }
        }
    }
    Ok(out)
}

/// `CHECKSUM TABLE` of tables of one database, by table name (`None` where the server gives
/// NULL).
pub async fn checksums(
    s: &Session,
    db: &str,
    tables: &[String],
) -> anyhow::Result<BTreeMap<String, Option<u64>>> {
    let mut out = BTreeMap::new();
    for chunk in tables.chunks(200) {
        let list = chunk
            .iter()
            .map(|t| format!("{}.{}", quote_ident(db), quote_ident(t)))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = s.query(&format!("CHECKSUM TABLE {list};")).await?;
        for (t, row) in chunk.iter().zip(rows) {
            out.insert(
                t.clone(),
                row.get(1).cloned().flatten().and_then(|v| v.parse().ok()),
            );
        }
    }
    Ok(out)
}

/// Everything wrong with a dump file and its manifest, without a server: the manifest's own
/// verdict, size and sha256 of the file, sha256 of its SQL, the trailer, rows per table.
pub fn file_problems(file: &Path) -> anyhow::Result<(Manifest, Vec<String>)> {
    let mpath = manifest_path(file);
    let manifest = Manifest::read(&mpath).map_err(|e| match &e {
        upgrade_shared::backup_manifest::ManifestError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            anyhow::Error::new(crate::plan::Refusal(format!(
                "{} has no manifest {}: it is not a verified dump",
                file.display(),
                mpath.display()
            )))
        }
        _ => anyhow::Error::new(e),
    })?;
    let mut problems = Vec::new();
    if !manifest.verified {
        problems.push("the manifest says the dump was not verified".to_string());
    }
    let changed = manifest.check_file(file)?;
    let intact = changed.is_empty();
    problems.extend(changed.iter().map(ToString::to_string));
    if intact {
        let summary = sqlfile::inspect_file(file, manifest.compression, None)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        if summary.sha256 != manifest.sql_sha256 {
            problems.push(format!(
                "the SQL's sha256 is {}, the manifest says {}",
                summary.sha256, manifest.sql_sha256
            ));
        }
        if !summary.trailer {
            problems.push(format!(
                "the dump does not end with its '-- Dump completed' trailer (last line: {:?})",
                summary.last_line
            ));
        }
        for db in &manifest.databases {
            for t in &db.tables {
                let found = summary
                    .rows
                    .get(&(db.name.clone(), t.name.clone()))
                    .copied()
                    .unwrap_or(0);
                if found != t.rows {
                    problems.push(format!(
                        "{}.{} has {found} rows in the file, the manifest says {}",
                        db.name, t.name, t.rows
                    ));
                }
            }
        }
    }
    Ok((manifest, problems))
}

/// A name for a scratch database: unique enough, within MySQL's 64 characters.
pub fn scratch_name(purpose: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "kubectl_upgrade_{purpose}_{:x}{:x}",
        std::process::id(),
        nanos
    )
}
