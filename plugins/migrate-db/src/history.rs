//! The history table `kubectl_upgrade_schema_history` in the migrated database: one row per
//! run of a script, per baseline and per repair, never updated once finished.
//!
//! A run's row is inserted before its first statement with `success = 0` and no `finished`,
//! and updated as statements complete: `reached` is the last statement known to have
//! completed, `reached_sha256` the prefix hash of statements `1..=reached`, and `in_flight`
//! the statement that was sent while its outcome is not yet recorded (only statements MySQL
//! commits on their own set it: DDL, `EXECUTE`, `CALL`). A row left with `in_flight` set is
//! *dirty*: whether that statement committed is unknown until someone looks and says so with
//! `repair --reason`.
//!
//! Values are written as hex literals converted to utf8mb4, so no text (a reason, an error
//! message, a path) is ever parsed as SQL, whatever `sql_mode` the script left the session
//! in; times are UTC (`UTC_TIMESTAMP(6)`). Rows are read back with every text column as
//! `HEX()` (the client prints NULL as `NULL`, which no hex string is).

use serde::Serialize;

/// The table's name.
pub const TABLE: &str = "kubectl_upgrade_schema_history";

/// Creates the table when it is missing (MySQL 5.7+, MariaDB 10.2+).
pub const CREATE: &str = "CREATE TABLE IF NOT EXISTS `kubectl_upgrade_schema_history` (\
id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
kind VARCHAR(16) NOT NULL, \
script VARCHAR(255) NOT NULL, \
version_from VARCHAR(64) NOT NULL, \
version_to VARCHAR(64) NOT NULL, \
sha256 CHAR(64) NOT NULL, \
statements INT UNSIGNED NOT NULL, \
first_statement INT UNSIGNED NOT NULL, \
reached INT UNSIGNED NOT NULL, \
reached_sha256 CHAR(64) NOT NULL, \
in_flight INT UNSIGNED NULL, \
started DATETIME(6) NOT NULL, \
finished DATETIME(6) NULL, \
success TINYINT(1) NOT NULL DEFAULT 0, \
error TEXT NULL, \
backup TEXT NULL, \
tool_version VARCHAR(64) NOT NULL, \
installed_by VARCHAR(255) NOT NULL, \
db_user VARCHAR(255) NOT NULL, \
connection_id BIGINT UNSIGNED NOT NULL, \
reason TEXT NULL, \
KEY script_idx (script)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Why a row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowKind {
    /// A run of a script.
    Run,
    /// `baseline --version V`: the schema was declared to be at `version_to`.
    Baseline,
    /// `repair`: a dirty or drifted script accepted by a person, with a reason.
    Repair,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Run => "run",
            RowKind::Baseline => "baseline",
            RowKind::Repair => "repair",
        }
    }
    fn parse(s: &str) -> Option<RowKind> {
        Some(match s {
            "run" => RowKind::Run,
            "baseline" => RowKind::Baseline,
            "repair" => RowKind::Repair,
            _ => return None,
        })
    }
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub id: u64,
    pub kind: RowKind,
    pub script: String,
    pub version_from: String,
    pub version_to: String,
    pub sha256: String,
    pub statements: u32,
    pub first_statement: u32,
    pub reached: u32,
    pub reached_sha256: String,
    pub in_flight: Option<u32>,
    pub started: String,
    pub finished: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    pub backup: Option<String>,
    pub tool_version: String,
    pub installed_by: String,
    pub db_user: String,
    pub connection_id: u64,
    pub reason: Option<String>,
}

/// The columns in the order [`SELECT`] reads them.
const COLUMNS: &[&str] = &[
    "id",
    "HEX(kind)",
    "HEX(script)",
    "HEX(version_from)",
    "HEX(version_to)",
    "HEX(sha256)",
    "statements",
    "first_statement",
    "reached",
    "HEX(reached_sha256)",
    "in_flight",
    "HEX(DATE_FORMAT(started, '%Y-%m-%dT%H:%i:%s.%fZ'))",
    "HEX(DATE_FORMAT(finished, '%Y-%m-%dT%H:%i:%s.%fZ'))",
    "success",
    "HEX(error)",
    "HEX(backup)",
    "HEX(tool_version)",
    "HEX(installed_by)",
    "HEX(db_user)",
    "connection_id",
    "HEX(reason)",
];

/// The table reference, qualified with its database so a script's `USE` cannot move it.
pub fn table(database: &str) -> String {
    format!("`{}`.`{TABLE}`", database.replace('`', "``"))
}

/// Reads every row of table `t`, oldest first.
pub fn select(t: &str) -> String {
    format!("SELECT {} FROM {t} ORDER BY id", COLUMNS.join(", "))
}

/// Whether the table exists in `database` (prints 1 or 0).
pub fn exists(database: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = '{TABLE}'",
        literal(database)
    )
}

/// Creates the table in `database` when it is missing.
pub fn create(database: &str) -> String {
    CREATE.replacen(&format!("`{TABLE}`"), &table(database), 1)
}

/// A text value as SQL that no `sql_mode` can misread.
pub fn literal(text: &str) -> String {
    if text.is_empty() {
        return "''".to_string();
    }
    let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
    format!("CONVERT(X'{hex}' USING utf8mb4)")
}

fn optional(text: Option<&str>) -> String {
    text.map_or_else(|| "NULL".to_string(), literal)
}

/// What a new row says; the server fills in times, the user and the connection.
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    pub kind: RowKind,
    pub script: &'a str,
    pub version_from: &'a str,
    pub version_to: &'a str,
    pub sha256: &'a str,
    pub statements: u32,
    pub first_statement: u32,
    pub reached: u32,
    pub reached_sha256: &'a str,
    /// Finished rows (baseline, repair) are written whole at once.
    pub finished: bool,
    pub backup: Option<&'a str>,
    pub installed_by: &'a str,
    pub reason: Option<&'a str>,
}

/// `INSERT` of a new row; `LAST_INSERT_ID()` names it afterwards on the same session.
pub fn insert(t: &str, row: &NewRow<'_>) -> String {
    format!(
        "INSERT INTO {t} (kind, script, version_from, version_to, sha256, statements, \
first_statement, reached, reached_sha256, in_flight, started, finished, success, error, backup, \
tool_version, installed_by, db_user, connection_id, reason) VALUES ({}, {}, {}, {}, {}, {}, {}, \
{}, {}, NULL, UTC_TIMESTAMP(6), {}, {}, NULL, {}, {}, {}, CURRENT_USER(), CONNECTION_ID(), {})",
        literal(row.kind.as_str()),
        literal(row.script),
        literal(row.version_from),
        literal(row.version_to),
        literal(row.sha256),
        row.statements,
        row.first_statement,
        row.reached,
        literal(row.reached_sha256),
        if row.finished {
            "UTC_TIMESTAMP(6)"
        } else {
            "NULL"
        },
        u8::from(row.finished),
        optional(row.backup),
        literal(crate::TOOL_VERSION),
        literal(row.installed_by),
        optional(row.reason),
    )
}

/// Marks statement `k` as sent and not yet confirmed.
pub fn mark_in_flight(t: &str, id: u64, k: usize) -> String {
    format!("UPDATE {t} SET in_flight = {k} WHERE id = {id}")
}

/// Records statement `k` as completed, unless the session's last statement failed (the
/// caller first copies `@@error_count` into `@kubectl_upgrade_errors`).
pub fn mark_reached(t: &str, id: u64, k: usize, prefix_sha256: &str) -> String {
    format!(
        "UPDATE {t} SET reached = {k}, reached_sha256 = '{prefix_sha256}', in_flight = NULL \
WHERE id = {id} AND @kubectl_upgrade_errors = 0"
    )
}

/// Closes a run: success, or the error of the statement that failed.
pub fn finish(t: &str, id: u64, error: Option<&str>) -> String {
    format!(
        "UPDATE {t} SET finished = UTC_TIMESTAMP(6), success = {}, error = {}, in_flight = NULL \
WHERE id = {id}",
        u8::from(error.is_none()),
        optional(error)
    )
}

/// Why history output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable history row {line:?}: {problem}")]
pub struct ParseError {
    pub line: String,
    pub problem: String,
}

fn unhex(field: &str) -> Result<Option<String>, String> {
    if field == "NULL" {
        return Ok(None);
    }
    if !field.len().is_multiple_of(2) {
        return Err(format!("odd hex {field:?}"));
    }
    let bytes = (0..field.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&field[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect::<Result<Vec<u8>, _>>()?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Parses the tab-separated output of [`select`].
pub fn parse_rows(output: &str) -> Result<Vec<Row>, ParseError> {
    output
        .lines()
        .filter(|l| !l.is_empty())
        .map(parse_row)
        .collect()
}

fn parse_row(line: &str) -> Result<Row, ParseError> {
    let err = |problem: String| ParseError {
        line: line.to_string(),
        problem,
    };
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != COLUMNS.len() {
        return Err(err(format!(
            "{} fields instead of {}",
            f.len(),
            COLUMNS.len()
        )));
    }
    let text = |i: usize| unhex(f[i]).map_err(|p| err(format!("{}: {p}", COLUMNS[i])));
    let required = |i: usize| text(i)?.ok_or_else(|| err(format!("{} is NULL", COLUMNS[i])));
    let number = |i: usize| {
        f[i].parse::<u64>()
            .map_err(|e| err(format!("{}: {e}", COLUMNS[i])))
    };
    let small = |i: usize| {
        let n = number(i)?;
        u32::try_from(n).map_err(|e| err(format!("{}: {e}", COLUMNS[i])))
    };
    let kind = required(1)?;
    Ok(Row {
        id: number(0)?,
        kind: RowKind::parse(&kind).ok_or_else(|| err(format!("unknown kind {kind:?}")))?,
        script: required(2)?,
        version_from: required(3)?,
        version_to: required(4)?,
        sha256: required(5)?,
        statements: small(6)?,
        first_statement: small(7)?,
        reached: small(8)?,
        reached_sha256: required(9)?,
        in_flight: if f[10] == "NULL" {
            None
        } else {
            Some(small(10)?)
        },
        started: required(11)?,
        finished: text(12)?,
        success: f[13] == "1",
        error: text(14)?,
        backup: text(15)?,
        tool_version: required(16)?,
        installed_by: required(17)?,
        db_user: required(18)?,
        connection_id: number(19)?,
        reason: text(20)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02X}")).collect()
    }

    /// A row as the client prints it.
    pub fn line(row: &Row) -> String {
        let t = |s: &str| hex(s);
        let o = |s: &Option<String>| s.as_deref().map_or("NULL".to_string(), hex);
        [
            row.id.to_string(),
            t(row.kind.as_str()),
            t(&row.script),
            t(&row.version_from),
            t(&row.version_to),
            t(&row.sha256),
            row.statements.to_string(),
            row.first_statement.to_string(),
            row.reached.to_string(),
            t(&row.reached_sha256),
            row.in_flight.map_or("NULL".into(), |k| k.to_string()),
            t(&row.started),
            o(&row.finished),
            u8::from(row.success).to_string(),
            o(&row.error),
            o(&row.backup),
            t(&row.tool_version),
            t(&row.installed_by),
            t(&row.db_user),
            row.connection_id.to_string(),
            o(&row.reason),
        ]
        .join("\t")
    }

    pub fn run_row(id: u64, script: &str, sha: &str) -> Row {
        Row {
            id,
            kind: RowKind::Run,
            script: script.into(),
            version_from: "1.7.2".into(),
            version_to: "1.8.0".into(),
            sha256: sha.into(),
            statements: 9,
            first_statement: 1,
            reached: 9,
            reached_sha256: "p".repeat(64),
            in_flight: None,
            started: "2026-12-01T09:00:00.000000Z".into(),
            finished: Some("2026-12-01T09:00:01.000000Z".into()),
            success: true,
            error: None,
            backup: Some("fate-1.7.2.sql.manifest.json sha256:ab".into()),
            tool_version: "0.1.0".into(),
            installed_by: "ops".into(),
            db_user: "root@localhost".into(),
            connection_id: 7,
            reason: None,
        }
    }

    #[test]
    fn rows_round_trip_through_the_client_format() {
        let mut a = run_row(1, "1.7.2-1.8.0.sql", &"a".repeat(64));
        a.error = Some("ERROR 1054: Unknown column 'x'\tin 'field list'\nnext".into());
        let mut b = run_row(2, "1.8.0-1.9.0.sql", &"b".repeat(64));
        b.in_flight = Some(3);
        b.finished = None;
        b.success = false;
        b.backup = None;
        b.reason = Some("checked: the column is there — ünïcode".into());
        let text = format!("{}\n{}\n", line(&a), line(&b));
        assert_eq!(parse_rows(&text).unwrap(), vec![a, b]);
    }

    #[test]
    fn broken_rows_are_errors_not_guesses() {
        assert!(parse_rows("1\t2").is_err());
        let mut bad = line(&run_row(1, "x.sql", "s"));
        bad = bad.replacen(&hex("run"), &hex("walk"), 1);
        assert!(
            parse_rows(&bad)
                .unwrap_err()
                .problem
                .contains("unknown kind")
        );
    }

    #[test]
    fn literals_cannot_break_out() {
        assert_eq!(literal(""), "''");
        assert_eq!(literal("a'b"), "CONVERT(X'612762' USING utf8mb4)");
        let sql = insert(
            &table("db"),
            &NewRow {
                kind: RowKind::Repair,
                script: "1.8.0-1.9.0.sql",
                version_from: "1.8.0",
                version_to: "1.9.0",
                sha256: "abc",
                statements: 21,
                first_statement: 1,
                reached: 3,
                reached_sha256: "def",
                finished: true,
                backup: None,
                installed_by: "ops",
                reason: Some("'); DROP TABLE t; --"),
            },
        );
        assert!(!sql.contains("DROP TABLE"), "{sql}");
        assert!(sql.contains("UTC_TIMESTAMP(6), 1, NULL, NULL"), "{sql}");
    }
}
