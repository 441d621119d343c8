//! The data a rehearsal proves survived, read through real `kubectl exec` before the runbook and
//! after it, and the comparison of the two.
//!
//! A database is read table by table with the `mysql` client in its pod: the columns (from
//! `information_schema.COLUMNS`), `CHECKSUM TABLE`, and every row as the client's batch output
//! (tab-separated, special characters escaped, one line per row), ordered by every column.
//! Afterwards the rows are read again over the columns the table had before, so a schema script
//! that adds columns changes the checksum (reported as the added columns) but must leave every
//! earlier value in place; a table with the same columns must have the same checksum and rows.
//! Tables the upgrade regenerates (declared per rehearsal, with the reason) must only exist.
//!
//! A directory tree is read entry by entry: type, mode and path from `find -printf`, a link's
//! target, and each regular file's bytes (`cat`), compared byte for byte.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::definition::{FileData, MysqlData};

/// Runs kubectl against the rehearsal's cluster.
pub trait Kubectl {
    /// `kubectl ARGS`; standard output when it exits 0, else an error with its standard error.
    fn output(&self, args: &[&str]) -> anyhow::Result<Vec<u8>>;
}

/// One table as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column names in order.
    pub columns: Vec<String>,
    /// `CHECKSUM TABLE` value.
    pub checksum: String,
    /// The rows over `columns` (or, afterwards, over the columns recorded before).
    pub rows: Vec<String>,
}

/// One database as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The database's name.
    pub name: String,
    /// `namespace/pod` it was read from.
    pub pod: String,
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
}

/// One entry of a directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `f`, `d`, `l`, … as `find -printf %y` gives it.
    pub kind: char,
    /// Permission bits, octal.
    pub mode: String,
    /// Bytes of a regular file, or a link's target.
    pub content: Vec<u8>,
}

/// One tree as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// `namespace/pod:path` it was read from.
    pub source: String,
    /// Entries by path relative to the tree's root.
    pub entries: BTreeMap<String, Entry>,
}

/// Everything a rehearsal recorded at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per declared database, in order.
    pub databases: Vec<Database>,
    /// Per declared tree, in order.
    pub trees: Vec<Tree>,
}

/// How long a recording waits for its pods to run and its servers to answer.
pub const READY_WAIT: Duration = Duration::from_secs(180);

/// Records every declared database and tree; afterwards pass the snapshot from before, so
/// rows are read over the columns recorded then.
pub fn record(
    k: &dyn Kubectl,
    mysql: &[MysqlData],
    files: &[FileData],
    before: Option<&Snapshot>,
) -> anyhow::Result<Snapshot> {
    let mut snap = Snapshot::default();
    for (i, spec) in mysql.iter().enumerate() {
        let earlier = before.and_then(|b| b.databases.get(i));
        snap.databases.push(
            retry(|| record_database(k, spec, earlier)).with_context(|| {
                format!(
                    "reading database {} ({} -l {})",
                    spec.database, spec.namespace, spec.selector
                )
            })?,
        );
    }
    for spec in files {
        let (selector, container) = match (&spec.after, before) {
            (Some(a), Some(_)) => (a.selector.as_str(), a.container.as_str()),
            _ => (spec.selector.as_str(), spec.container.as_str()),
        };
        snap.trees.push(
            retry(|| record_tree(k, spec, selector, container)).with_context(|| {
                format!("reading {} ({} -l {selector})", spec.path, spec.namespace)
            })?,
        );
    }
    Ok(snap)
}

/// Runs `f` until it succeeds or [`READY_WAIT`] has passed (pods starting, servers initialising).
fn retry<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + READY_WAIT;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// [`ready_pod`], waiting up to [`READY_WAIT`] for one.
pub fn ready_pod_within(
    k: &dyn Kubectl,
    namespace: &str,
    selector: &str,
) -> anyhow::Result<String> {
    retry(|| ready_pod(k, namespace, selector))
}

/// The name of a Running, Ready pod matching the selector that is not being deleted.
pub fn ready_pod(k: &dyn Kubectl, namespace: &str, selector: &str) -> anyhow::Result<String> {
    let out = k.output(&["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])?;
    let list: serde_json::Value =
        serde_json::from_slice(&out).context("kubectl printed no JSON")?;
    let ready = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["phase"] == "Running"
                && p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .and_then(|p| p["metadata"]["name"].as_str());
    ready
        .map(String::from)
        .with_context(|| format!("no ready pod matches {selector} in {namespace}"))
}

fn identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn query(
    k: &dyn Kubectl,
    ns: &str,
    pod: &str,
    c: &MysqlData,
    sql: &str,
) -> anyhow::Result<Vec<String>> {
    let out = k.output(&[
        "exec",
        "-n",
        ns,
        pod,
        "-c",
        &c.container,
        "--",
        "mysql",
        "-uroot",
        "-N",
        "-B",
        "-e",
        sql,
        &c.database,
    ])?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(String::from)
        .collect())
}

fn record_database(
    k: &dyn Kubectl,
    spec: &MysqlData,
    before: Option<&Database>,
) -> anyhow::Result<Database> {
    let pod = ready_pod(k, &spec.namespace, &spec.selector)?;
    let ns = &spec.namespace;
    let mut columns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let listing = format!(
        "SELECT c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME WHERE c.TABLE_SCHEMA = {} AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
        sql_string(&spec.database)
    );
    for line in query(k, ns, &pod, spec, &listing)? {
        let (table, column) = line
            .split_once('\t')
            .with_context(|| format!("unexpected column listing line {line:?}"))?;
        columns.entry(table.into()).or_default().push(column.into());
    }
    if columns.is_empty() {
        bail!("database {} has no tables in {ns}/{pod}", spec.database);
    }
    let names: Vec<String> = columns
        .keys()
        .map(|t| format!("{}.{}", identifier(&spec.database), identifier(t)))
        .collect();
    let mut checksums = BTreeMap::new();
    for line in query(
        k,
        ns,
        &pod,
        spec,
        &format!("CHECKSUM TABLE {}", names.join(", ")),
    )? {
        let mut parts = line.split('\t');
        let (Some(name), Some(sum)) = (parts.next(), parts.next()) else {
            bail!("unexpected CHECKSUM TABLE line {line:?}");
        };
        let table = name.split_once('.').map_or(name, |(_, t)| t);
        checksums.insert(table.to_string(), sum.to_string());
    }
    let mut tables = BTreeMap::new();
    for (table, cols) in columns {
        let over: Vec<String> = match before.and_then(|b| b.tables.get(&table)) {
            Some(earlier) => earlier
                .columns
                .iter()
                .filter(|c| cols.contains(c))
                .cloned()
                .collect(),
            None => cols.clone(),
        };
        let select = if over.is_empty() {
            format!("SELECT COUNT(*) FROM {}", identifier(&table))
        } else {
            let list: Vec<String> = over.iter().map(|c| identifier(c)).collect();
            let order: Vec<String> = (1..=over.len()).map(|i| i.to_string()).collect();
            format!(
                "SELECT {} FROM {} ORDER BY {}",
                list.join(", "),
                identifier(&table),
                order.join(", ")
            )
        };
        let rows = query(k, ns, &pod, spec, &select)?;
        tables.insert(
            table.clone(),
            Table {
                checksum: checksums.get(&table).cloned().unwrap_or_default(),
                columns: cols,
                rows,
            },
        );
    }
    Ok(Database {
        name: spec.database.clone(),
        pod: format!("{ns}/{pod}"),
        tables,
    })
}

fn record_tree(
    k: &dyn Kubectl,
    spec: &FileData,
    selector: &str,
    container: &str,
) -> anyhow::Result<Tree> {
    let pod = ready_pod(k, &spec.namespace, selector)?;
    let ns = &spec.namespace;
    let root = spec.path.trim_end_matches('/');
    let listing = k.output(&[
        "exec",
        "-n",
        ns,
        &pod,
        "-c",
        container,
        "--",
        "find",
        root,
        "-mindepth",
        "1",
        "-printf",
        "%y %m %P\\0",
    ])?;
    let mut entries = BTreeMap::new();
    for item in listing.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let text = String::from_utf8_lossy(item);
        let mut parts = text.splitn(3, ' ');
        let (Some(kind), Some(mode), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            bail!("unexpected find line {text:?}");
        };
        let kind = kind.chars().next().unwrap_or('?');
        let full = format!("{root}/{path}");
        let content = match kind {
            'f' => k.output(&[
                "exec", "-n", ns, &pod, "-c", container, "--", "cat", "--", &full,
            ])?,
            'l' => k.output(&[
                "exec", "-n", ns, &pod, "-c", container, "--", "readlink", "--", &full,
            ])?,
            _ => Vec::new(),
        };
        entries.insert(
            path.to_string(),
            Entry {
                kind,
                mode: mode.to_string(),
                content,
            },
        );
    }
    Ok(Tree {
        source: format!("{ns}/{pod}:{root}"),
        entries,
    })
}

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// One line per database or tree saying what was equal.
    pub summary: Vec<String>,
    /// One line per difference; empty when nothing was lost or changed.
    pub differences: Vec<String>,
}

/// Compares what was recorded after the runbook with what was recorded before.
pub fn compare(mysql: &[MysqlData], before: &Snapshot, after: &Snapshot) -> Comparison {
    let mut out = Comparison::default();
    for (i, (b, a)) in before.databases.iter().zip(&after.databases).enumerate() {
        let regenerated = mysql.get(i).map(|m| &m.regenerated);
        compare_database(b, a, regenerated, &mut out);
    }
    for (b, a) in before.trees.iter().zip(&after.trees) {
        compare_tree(b, a, &mut out);
    }
    out
}

fn compare_database(
    before: &Database,
    after: &Database,
    regenerated: Option<&BTreeMap<String, String>>,
    out: &mut Comparison,
) {
    let mut same_sum = 0;
    let mut rows = 0;
    let mut widened = Vec::new();
    let mut skipped = Vec::new();
    for (name, b) in &before.tables {
        let Some(a) = after.tables.get(name) else {
            out.differences
                .push(format!("{}: table {name} is gone", after.pod));
            continue;
        };
        if regenerated.is_some_and(|r| r.contains_key(name)) {
            skipped.push(name.as_str());
            continue;
        }
        let missing: Vec<&String> = b
            .columns
            .iter()
            .filter(|c| !a.columns.contains(c))
            .collect();
        if !missing.is_empty() {
            out.differences.push(format!(
                "{}: table {name} lost column(s) {}",
                after.pod,
                missing
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        if a.rows != b.rows {
            out.differences
                .push(row_difference(&after.pod, name, &b.rows, &a.rows));
            continue;
        }
        rows += b.rows.len();
        let added: Vec<&String> = a
            .columns
            .iter()
            .filter(|c| !b.columns.contains(c))
            .collect();
        if added.is_empty() {
            if a.checksum != b.checksum {
                out.differences.push(format!(
                    "{}: table {name} has the same rows but CHECKSUM TABLE {} instead of {}",
                    after.pod, a.checksum, b.checksum
                ));
                continue;
            }
            same_sum += 1;
        } else {
            widened.push(format!(
                "{name} + {}",
                added
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut line = format!(
        "database {} ({} then {}): {} tables, {rows} rows equal; CHECKSUM TABLE equal on {same_sum}",
        before.name,
        before.pod,
        after.pod,
        before.tables.len()
    );
    if !widened.is_empty() {
        line.push_str(&format!(
            "; rows equal over their earlier columns where the schema scripts added columns ({})",
            widened.join("; ")
        ));
    }
    if !skipped.is_empty() {
        line.push_str(&format!(
            "; regenerated by the new version: {}",
            skipped.join(", ")
        ));
    }
    out.summary.push(line);
}

fn row_difference(pod: &str, table: &str, before: &[String], after: &[String]) -> String {
    let first = before
        .iter()
        .zip(after)
        .position(|(b, a)| b != a)
        .unwrap_or(before.len().min(after.len()));
    format!(
        "{pod}: table {table} has {} rows, {} before; first difference at row {}: before {:?}, after {:?}",
        after.len(),
        before.len(),
        first + 1,
        before.get(first).map(String::as_str).unwrap_or("(none)"),
        after.get(first).map(String::as_str).unwrap_or("(none)"),
    )
}

fn compare_tree(before: &Tree, after: &Tree, out: &mut Comparison) {
    let mut bytes = 0usize;
    let mut files = 0usize;
    let start = out.differences.len();
    for (path, b) in &before.entries {
        match after.entries.get(path) {
            None => out
                .differences
                .push(format!("{}: {path} is gone", after.source)),
            Some(a) if a.kind != b.kind => out.differences.push(format!(
                "{}: {path} is a {} now, a {} before",
                after.source, a.kind, b.kind
            )),
            Some(a) if a.mode != b.mode => out.differences.push(format!(
                "{}: {path} has mode {} now, {} before",
                after.source, a.mode, b.mode
            )),
            Some(a) if a.content != b.content => {
                let at = b
                    .content
                    .iter()
                    .zip(&a.content)
                    .position(|(x, y)| x != y)
                    .unwrap_or(b.content.len().min(a.content.len()));
                out.differences.push(format!(
                    "{}: {path} differs from byte {at} ({} bytes now, {} before)",
                    after.source,
                    a.content.len(),
                    b.content.len()
                ));
            }
            Some(a) => {
                if a.kind == 'f' {
                    files += 1;
                    bytes += a.content.len();
                }
            }
        }
    }
    for path in after
        .entries
        .keys()
        .filter(|p| !before.entries.contains_key(*p))
    {
        out.differences
            .push(format!("{}: {path} is new", after.source));
    }
    if out.differences.len() == start {
        out.summary.push(format!(
            "{} then {}: {} entries, {files} files ({bytes} bytes) equal byte for byte",
            before.source,
            after.source,
            before.entries.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], checksum: &str, rows: &[&str]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            checksum: checksum.into(),
            rows: rows.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn db(tables: Vec<(&str, Table)>) -> Snapshot {
        Snapshot {
            databases: vec![Database {
                name: "d".into(),
                pod: "ns/pod".into(),
                tables: tables
                    .into_iter()
                    .map(|(n, t)| (n.to_string(), t))
                    .collect(),
            }],
            trees: vec![],
        }
    }

    fn spec(regenerated: &[&str]) -> Vec<MysqlData> {
        vec![MysqlData {
            namespace: "ns".into(),
            selector: "app=db".into(),
            container: "db".into(),
            database: "d".into(),
            regenerated: regenerated
                .iter()
                .map(|t| (t.to_string(), "why".into()))
                .collect(),
        }]
    }

    #[test]
    fn equal_tables_compare_equal() {
        let s = db(vec![("t", table(&["a"], "1", &["x"]))]);
        let c = compare(&spec(&[]), &s, &s.clone());
        assert!(c.differences.is_empty(), "{c:?}");
        assert!(
            c.summary[0].contains("1 rows equal; CHECKSUM TABLE equal on 1"),
            "{c:?}"
        );
    }

    #[test]
    fn an_added_column_is_reported_and_rows_must_still_match() {
        let b = db(vec![("t", table(&["a"], "1", &["x", "y"]))]);
        let a = db(vec![("t", table(&["a", "b"], "2", &["x", "y"]))]);
        let c = compare(&spec(&[]), &b, &a);
        assert!(c.differences.is_empty(), "{c:?}");
        assert!(c.summary[0].contains("t + b"), "{c:?}");
        let lost = db(vec![("t", table(&["a", "b"], "2", &["x"]))]);
        let c = compare(&spec(&[]), &b, &lost);
        assert!(c.differences[0].contains("has 1 rows, 2 before"), "{c:?}");
    }

    #[test]
    fn a_changed_checksum_on_the_same_columns_is_a_difference() {
        let b = db(vec![("t", table(&["a"], "1", &["x"]))]);
        let a = db(vec![("t", table(&["a"], "9", &["x"]))]);
        assert_eq!(compare(&spec(&[]), &b, &a).differences.len(), 1);
    }

    #[test]
    fn missing_tables_and_columns_are_differences_unless_regenerated() {
        let b = db(vec![
            ("t", table(&["a", "b"], "1", &["x"])),
            ("u", table(&["a"], "1", &["x"])),
            ("r", table(&["a"], "1", &["old"])),
        ]);
        let a = db(vec![
            ("t", table(&["a"], "1", &["x"])),
            ("r", table(&["a"], "5", &["new"])),
        ]);
        let c = compare(&spec(&["r"]), &b, &a);
        assert_eq!(c.differences.len(), 2, "{c:?}");
        assert!(c.differences.iter().any(|d| d.contains("u is gone")));
        assert!(c.differences.iter().any(|d| d.contains("lost column(s) b")));
        assert!(c.summary[0].contains("regenerated by the new version: r"));
    }

    fn tree(entries: &[(&str, char, &str, &[u8])]) -> Snapshot {
        Snapshot {
            databases: vec![],
            trees: vec![Tree {
                source: "ns/pod:/data".into(),
                entries: entries
                    .iter()
                    .map(|(p, k, m, c)| {
                        (
                            p.to_string(),
                            Entry {
                                kind: *k,
                                mode: m.to_string(),
                                content: c.to_vec(),
                            },
                        )
                    })
                    .collect(),
            }],
        }
    }

    #[test]
    fn trees_compare_byte_for_byte() {
        let b = tree(&[("a", 'f', "644", b"hello"), ("d", 'd', "755", b"")]);
        assert!(compare(&[], &b, &b.clone()).differences.is_empty());
        let changed = tree(&[("a", 'f', "644", b"hellO"), ("d", 'd', "755", b"")]);
        let c = compare(&[], &b, &changed);
        assert_eq!(
            c.differences,
            ["ns/pod:/data: a differs from byte 4 (5 bytes now, 5 before)"]
        );
        let moded = tree(&[
            ("a", 'f', "600", b"hello"),
            ("d", 'd', "755", b""),
            ("n", 'f', "644", b""),
        ]);
        let c = compare(&[], &b, &moded);
        assert_eq!(c.differences.len(), 2, "{c:?}");
    }
}
