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

/// The base tables of a database with their storage engines.
pub async fn tables_with_engines(s: &Session, db: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(s
        .query(&format!(
            "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;",
            quote_str(db)
        ))
        .await?
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            let name = r.next().flatten()?;
            Some((name, r.next().flatten().unwrap_or_default()))
        })
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

/// Checksums by (database, table); `None` where the server gives NULL.
pub type Sums = BTreeMap<(String, String), Option<u64>>;

/// The row the client prints once the snapshot of [`snapshot_checksums`] exists.
const SNAPSHOT_TAKEN: &str = "kubectl-upgrade:snapshot-taken";

/// `CHECKSUM TABLE` of `tables` (database, table) read in one consistent snapshot:
/// REPEATABLE READ and `START TRANSACTION WITH CONSISTENT SNAPSHOT`, which InnoDB establishes
/// at once and its CHECKSUM TABLE reads in that transaction see (whatever is committed
/// meanwhile). `taken` is signalled as soon as the server confirmed the snapshot: the client
/// runs unbuffered and prints a marker row right after it, long before the checksums end.
pub async fn snapshot_checksums(
    s: &Session,
    tables: &[(String, String)],
    taken: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<Sums> {
    let mut sql = format!(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nSTART TRANSACTION WITH CONSISTENT SNAPSHOT;\nSELECT {};\n",
        quote_str(SNAPSHOT_TAKEN)
    );
    for chunk in tables.chunks(200) {
        let list = chunk
            .iter()
            .map(|(d, t)| format!("{}.{}", quote_ident(d), quote_ident(t)))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!("CHECKSUM TABLE {list};\n"));
    }
    sql.push_str("COMMIT;\n");
    let args = [
        "--batch",
        "--skip-column-names",
        "--unbuffered",
        "--default-character-set=utf8mb4",
    ]
    .map(String::from);
    let mut out = MarkerWatch {
        data: Vec::new(),
        marker: format!("{SNAPSHOT_TAKEN}\n").into_bytes(),
        taken,
    };
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> =
        Box::new(std::io::Cursor::new(sql.into_bytes()));
    let finished = s
        .run(
            &s.tools.client.clone(),
            &args,
            Some(input),
            &mut out,
            &mut |_| {},
        )
        .await?;
    finished.check(&s.db.pod, "CHECKSUM TABLE")?;
    let text = String::from_utf8_lossy(&out.data);
    let rows = upgrade_shared::mysql::parse_tsv(&text);
    let mut rows = rows.into_iter();
    match rows.next() {
        Some(first) if first.first().cloned().flatten().as_deref() == Some(SNAPSHOT_TAKEN) => {}
        _ => anyhow::bail!("CHECKSUM TABLE: the server did not confirm the snapshot"),
    }
    Ok(tables
        .iter()
        .cloned()
        .zip(rows)
        .map(|(key, row)| {
            let sum = row.get(1).cloned().flatten().and_then(|v| v.parse().ok());
            (key, sum)
        })
        .collect())
}

/// Collects a client's output and signals when it starts with `marker`.
struct MarkerWatch {
    data: Vec<u8>,
    marker: Vec<u8>,
    taken: Option<tokio::sync::oneshot::Sender<()>>,
}

impl tokio::io::AsyncWrite for MarkerWatch {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        this.data.extend_from_slice(buf);
        if this.data.len() >= this.marker.len()
            && this.data.starts_with(&this.marker)
            && let Some(tx) = this.taken.take()
        {
            let _ = tx.send(());
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Everything wrong with a dump file and its manifest, without a server: the manifest's own
/// verdict, size and sha256 of the file, sha256 of its SQL, the trailer, rows per table.
pub fn file_problems(file: &Path) -> anyhow::Result<(Manifest, Vec<String>)> {
    let manifest = read_manifest(file)?;
    let problems = content_problems(file, &manifest)?;
    Ok((manifest, problems))
}

/// The manifest beside a dump; a dump without one is refused as unverified.
pub fn read_manifest(file: &Path) -> anyhow::Result<Manifest> {
    let mpath = manifest_path(file);
    Manifest::read(&mpath).map_err(|e| match &e {
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
    })
}

/// Everything wrong with a dump file against its manifest, read in one pass
/// ([`sqlfile::read_stored`]). The SQL's findings count only for a file that is the one the
/// manifest describes: a changed file is reported as changed, not by what its text holds.
pub fn content_problems(file: &Path, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    if !manifest.verified {
        problems.push("the manifest says the dump was not verified".to_string());
    }
    let cannot_read = |e: std::io::Error| anyhow::anyhow!("cannot read {}: {e}", file.display());
    let read = sqlfile::read_stored(file, manifest.compression).map_err(cannot_read)?;
    let changed = manifest.compare(read.bytes, &read.sha256);
    if !changed.is_empty() {
        problems.extend(changed.iter().map(ToString::to_string));
        return Ok(problems);
    }
    let summary = read.sql.map_err(cannot_read)?;
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
    Ok(problems)
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
