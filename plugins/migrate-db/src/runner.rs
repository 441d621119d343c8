//! Runs scripts on a [`Client`] session statement by statement, recording each one in the
//! history table so that a failure says exactly what committed and a re-run resumes at the
//! next statement.
//!
//! How each kind of statement is confirmed (see [`crate::split::Kind`]):
//! - `rows`: wrapped in `START TRANSACTION … COMMIT` together with its history update, so the
//!   change and its record commit together (inside a script's own transaction the update
//!   simply joins it: rolled back together, recorded together);
//! - `begin`/`end`: the update follows the statement (inside, resp. after, the transaction);
//! - `effect` (DDL, `EXECUTE`, `CALL`): MySQL commits it on its own, so the row is first marked
//!   `in_flight = k`, then `reached = k` once the statement succeeded. A run cut in between
//!   leaves the row dirty;
//! - `session`: leaves nothing in the database and gets no update of its own; a resumed run
//!   replays every session statement before its resume point (in order, on the new session),
//!   so variables and prepared statements are back before the next statement runs. Replayed
//!   `SET @v = (SELECT …)` statements read the database as it is now.
//!
//! The session holds the named lock ([`lock_name`]) from before the history is read until it
//! closes; a second apply waits for it with a bounded timeout.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{Client, ClientError};
use crate::history::{self, NewRow, RowKind, table};
use crate::protocol::{ERRORS_VAR, Step};
use crate::scripts::Script;
use crate::split::{Kind, summary};

/// The name of the lock for one database (at most 64 characters, MySQL's limit).
pub fn lock_name(database: &str) -> String {
    let name = format!("kubectl-upgrade-migrate-db:{database}");
    if name.len() <= 64 {
        name
    } else {
        format!(
            "kubectl-upgrade-migrate-db:{}",
            &crate::scripts::sha256_hex(database.as_bytes())[..32]
        )
    }
}

/// Who holds the lock, from the server's process list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub connection: u64,
    pub user: String,
    pub host: String,
    /// Seconds the holder's current command has run.
    pub seconds: u64,
}

/// SQL that prints the holder of `lock` (nothing when it is free).
pub fn holder_query(lock: &str) -> String {
    let l = history::literal(lock);
    format!(
        "SELECT ID, HEX(USER), HEX(HOST), TIME FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK({l})"
    )
}

/// Parses [`holder_query`]'s output.
pub fn parse_holder(lines: &[String]) -> Option<Holder> {
    let f: Vec<&str> = lines.first()?.split('\t').collect();
    let unhex = |s: &str| -> String {
        let bytes: Vec<u8> = (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(Holder {
        connection: f.first()?.parse().ok()?,
        user: unhex(f.get(1)?),
        host: unhex(f.get(2)?),
        seconds: f.get(3)?.parse().unwrap_or(0),
    })
}

/// Takes the named lock on the session, waiting at most `wait`. `Ok(false)`: another session
/// kept it.
pub async fn lock(client: &mut Client, lock: &str, wait: Duration) -> Result<bool, ClientError> {
    let secs = wait.as_secs().max(1);
    let out = client
        .query(
            "taking the migration lock",
            &format!("SELECT GET_LOCK({}, {secs})", history::literal(lock)),
        )
        .await?;
    Ok(out.first().map(String::as_str) == Some("1"))
}

/// Who the history names as having run a step.
#[derive(Debug, Clone)]
pub struct Context {
    pub database: String,
    pub installed_by: String,
    /// The backup the run relied on, as recorded (`FILE sha256:…`, or `none: --no-backup`).
    pub backup: String,
}

/// How running one script ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ScriptRun {
    /// Every statement from `from` on ran; `replayed` session statements before it.
    Done {
        row: u64,
        from: usize,
        replayed: usize,
        statements: usize,
        seconds: f64,
    },
    /// Statement `statement` failed; statements `1..=committed` are recorded as committed.
    Failed {
        row: u64,
        statement: usize,
        line: usize,
        text: String,
        error: String,
        committed: usize,
        replaying: bool,
    },
}

async fn insert_row(
    client: &mut Client,
    t: &str,
    script: &Script,
    at: usize,
    ctx: &Context,
) -> Result<u64, ClientError> {
    let reached = at - 1;
    let prefix = script.prefix_sha256(reached);
    let sql = history::insert(
        t,
        &NewRow {
            kind: RowKind::Run,
            script: &script.file,
            version_from: &script.from.canonical(),
            version_to: &script.to.canonical(),
            sha256: &script.sha256,
            statements: count(script.statements.len()),
            first_statement: count(at),
            reached: count(reached),
            reached_sha256: &prefix,
            finished: false,
            backup: Some(&ctx.backup),
            installed_by: &ctx.installed_by,
            reason: None,
        },
    );
    client
        .query("recording the run in the history", &sql)
        .await?;
    let out = client
        .query("reading the history row's id", "SELECT LAST_INSERT_ID()")
        .await?;
    out.first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Sql {
            what: "reading the history row's id".into(),
            error: format!("unexpected answer {out:?}"),
        })
}

pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How statement `k` of `script` is framed, given whether a transaction of the script's own is
/// open.
pub fn frame(t: &str, row: u64, script: &Script, k: usize, in_txn: bool) -> Step {
    let st = &script.statements[k - 1];
    let reached = history::mark_reached(t, row, k, &script.prefix_sha256(k));
    let mut step = Step {
        sql: st.text.clone(),
        ..Step::default()
    };
    match st.kind {
        Kind::Session => {}
        Kind::Rows if !in_txn => {
            step.before.push("START TRANSACTION".into());
            step.after.push(reached);
            step.after.push("COMMIT".into());
        }
        Kind::Rows | Kind::Begin | Kind::End => step.after.push(reached),
        Kind::Effect => {
            step.before.push(history::mark_in_flight(t, row, k));
            step.after.push(reached);
        }
    }
    step
}

/// Runs `script` from statement `at` (1-based), replaying the session statements before it.
pub async fn run_script(
    client: &mut Client,
    script: &Script,
    at: usize,
    ctx: &Context,
    on_statement: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<ScriptRun, ClientError> {
    let t = table(&ctx.database);
    let started = Instant::now();
    let n = script.statements.len();
    for st in &script.statements {
        if client.clashes(&st.text) {
            return Err(ClientError::Sql {
                what: format!("statement {} of {}", st.index, script.file),
                error: "it contains the session's delimiter; run again".into(),
            });
        }
    }
    let row = insert_row(client, &t, script, at, ctx).await?;
    let mut replayed = 0;
    for st in script.statements[..at - 1]
        .iter()
        .filter(|s| s.kind == Kind::Session)
    {
        let outcome = client
            .step(&Step {
                sql: st.text.clone(),
                ..Step::default()
            })
            .await?;
        if outcome.failed() {
            return fail(
                client,
                &t,
                row,
                script,
                st.index,
                outcome.error(),
                true,
                false,
            )
            .await;
        }
        replayed += 1;
    }
    let mut in_txn = false;
    for k in at..=n {
        let st = &script.statements[k - 1];
        let outcome = client.step(&frame(&t, row, script, k, in_txn)).await?;
        if outcome.failed() {
            return fail(client, &t, row, script, k, outcome.error(), false, in_txn).await;
        }
        in_txn = match st.kind {
            Kind::Begin => true,
            Kind::End | Kind::Effect => false,
            Kind::Session | Kind::Rows => in_txn,
        };
        on_statement(k, n);
    }
    let done = format!(
        "UPDATE {t} SET finished = UTC_TIMESTAMP(6), success = 1, in_flight = NULL, reached = {n}, \
reached_sha256 = '{}' WHERE id = {row}",
        script.prefix_sha256(n)
    );
    client.query("recording the finished run", &done).await?;
    Ok(ScriptRun::Done {
        row,
        from: at,
        replayed,
        statements: n,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn fail(
    client: &mut Client,
    t: &str,
    row: u64,
    script: &Script,
    k: usize,
    error: String,
    replaying: bool,
    in_txn: bool,
) -> Result<ScriptRun, ClientError> {
    if in_txn {
        // The script's own transaction is lost with the failure; say so in the history
        // rather than let the connection's end roll it back unrecorded.
        client
            .query("rolling back the script's transaction", "ROLLBACK")
            .await?;
    }
    let st = &script.statements[k - 1];
    let recorded = format!(
        "statement {k} (line {}: {}){}: {error}",
        st.line,
        summary(&st.text),
        if replaying {
            " failed while being replayed"
        } else {
            ""
        }
    );
    let sql = history::finish(t, row, Some(&recorded));
    client.query("recording the failure", &sql).await?;
    let out = client
        .query(
            "reading what committed",
            &format!("SELECT reached FROM {t} WHERE id = {row}"),
        )
        .await?;
    let committed = out.first().and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(ScriptRun::Failed {
        row,
        statement: k,
        line: st.line,
        text: summary(&st.text),
        error,
        committed,
        replaying,
    })
}

/// Checks the error variable name the history updates use is the one the protocol sets.
const _: () = assert!(ERRORS_VAR.len() == "@kubectl_upgrade_errors".len());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_mysql() {
        assert_eq!(
            lock_name("eggroll_meta"),
            "kubectl-upgrade-migrate-db:eggroll_meta"
        );
        let long = "d".repeat(64);
        assert_eq!(lock_name(&long).len(), 59);
        assert!(lock_name(&long).len() <= 64);
    }

    #[test]
    fn frames_by_kind() {
        let s = Script::parse(
            "1.0.0-1.1.0.sql",
            "SET @a = 1; INSERT INTO t VALUES (1); ALTER TABLE t ADD c INT; START TRANSACTION; \
             UPDATE t SET c = 1; COMMIT;",
        )
        .unwrap();
        let t = table("db");
        assert_eq!(t, "`db`.`kubectl_upgrade_schema_history`");
        let session = frame(&t, 5, &s, 1, false);
        assert!(session.before.is_empty() && session.after.is_empty());
        let rows = frame(&t, 5, &s, 2, false);
        assert_eq!(rows.before, ["START TRANSACTION"]);
        assert!(
            rows.after[0]
                .starts_with("UPDATE `db`.`kubectl_upgrade_schema_history` SET reached = 2")
        );
        assert!(rows.after[0].ends_with("WHERE id = 5 AND @kubectl_upgrade_errors = 0"));
        assert_eq!(rows.after[1], "COMMIT");
        let effect = frame(&t, 5, &s, 3, false);
        assert_eq!(
            effect.before,
            ["UPDATE `db`.`kubectl_upgrade_schema_history` SET in_flight = 3 WHERE id = 5"]
        );
        assert_eq!(effect.after.len(), 1);
        // Inside the script's own transaction nothing is wrapped again.
        let inner = frame(&t, 5, &s, 5, true);
        assert!(inner.before.is_empty());
        assert_eq!(inner.after.len(), 1);
        assert!(inner.after[0].contains(&s.prefix_sha256(5)));
    }

    #[test]
    fn holders_parse() {
        let line = format!("42\t{}\t{}\t7", "726F6F74", "6C6F63616C686F7374");
        assert_eq!(
            parse_holder(&[line]),
            Some(Holder {
                connection: 42,
                user: "root".into(),
                host: "localhost".into(),
                seconds: 7
            })
        );
        assert_eq!(parse_holder(&[]), None);
    }
}
