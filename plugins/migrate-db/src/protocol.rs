//! The conversation with one long-lived `mysql`/`mariadb` client: statements go in one by
//! one, and after each the client prints a marker line that says whether it failed, so one
//! session (and the `GET_LOCK` it holds) serves a whole migration.
//!
//! The client runs with `--batch --skip-column-names --unbuffered --force --skip-reconnect`:
//! it keeps going after a failed statement (so the session survives to record the failure),
//! flushes each result at once, and never reconnects behind our back (a new connection would
//! hold neither the lock nor the session's state). The session first switches the client's
//! delimiter to a random token (`$ku` + ten hex digits + `$`), so statements are sent exactly as the script
//! splitter cut them, whatever delimiter or `;` they contain (at most 15 characters: the
//! client silently truncates longer delimiters).
//!
//! Each step is sent as one write:
//!
//! ```text
//! <before…>                                  (history updates, START TRANSACTION)
//! <statement>
//! SELECT '<nonce>', 'out', <n>               (ends the statement's own output)
//! SHOW ERRORS                                (the error rows of the statement, if it failed)
//! SET @kubectl_upgrade_errors = @@error_count
//! <after…>                                   (history updates guarded by that variable, COMMIT)
//! SELECT '<nonce>', 'done', <n>, @kubectl_upgrade_errors
//! ```
//!
//! `@@error_count` is the number of errors of the last statement that produced messages. A
//! `SELECT` without tables, `SHOW ERRORS` and `SET` leave it alone, and a session stops at its
//! first failure, so right after the statement it is above zero exactly when the statement
//! failed. The markers carry the nonce, which no statement's output can guess.

use std::fmt::Write as _;

/// The variable that holds the statement's error count for the guarded history updates.
pub const ERRORS_VAR: &str = "@kubectl_upgrade_errors";

/// Marker tags and the nonce of one session.
#[derive(Debug, Clone)]
pub struct Protocol {
    nonce: String,
}

/// One step: a statement framed by what runs before and after it.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub before: Vec<String>,
    pub sql: String,
    pub after: Vec<String>,
}

/// A parsed marker line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub tag: String,
    pub step: u64,
    pub rest: Vec<String>,
}

impl Protocol {
    /// A protocol with a fresh random nonce.
    pub fn new() -> Protocol {
        Protocol::with_nonce(&random_hex())
    }

    /// A protocol with a given nonce (tests).
    pub fn with_nonce(nonce: &str) -> Protocol {
        Protocol {
            nonce: nonce.to_string(),
        }
    }

    /// The client delimiter of this session: `$ku` and ten hex digits of the nonce, then `$`.
    /// The client keeps at most 15 characters of a delimiter (`char delimiter[16]` in the
    /// mysql client), so a longer one would be cut short and split statements in two.
    pub fn delimiter(&self) -> String {
        let short: String = self.nonce.chars().take(10).collect();
        format!("$ku{short}$")
    }

    /// True when `text` could be cut by this session's delimiter.
    pub fn clashes(&self, text: &str) -> bool {
        text.contains(&self.delimiter())
    }

    /// What the session sends first: the delimiter switch.
    pub fn opening(&self) -> String {
        format!("DELIMITER {}\n", self.delimiter())
    }

    fn push(&self, out: &mut String, sql: &str) {
        // On its own line, so a trailing `-- comment` cannot swallow it.
        let _ = write!(out, "{sql}\n{}\n", self.delimiter());
    }

    /// The text of step number `n`.
    pub fn render(&self, n: u64, step: &Step) -> String {
        let mut out = String::new();
        for sql in &step.before {
            self.push(&mut out, sql);
        }
        self.push(&mut out, &step.sql);
        self.push(&mut out, &format!("SELECT '{}', 'out', {n}", self.nonce));
        self.push(&mut out, "SHOW ERRORS");
        self.push(&mut out, &format!("SET {ERRORS_VAR} = @@error_count"));
        for sql in &step.after {
            self.push(&mut out, sql);
        }
        self.push(
            &mut out,
            &format!("SELECT '{}', 'done', {n}, {ERRORS_VAR}", self.nonce),
        );
        out
    }

    /// Reads a marker line of this session.
    pub fn marker(&self, line: &str) -> Option<Marker> {
        let mut fields = line.split('\t');
        if fields.next()? != self.nonce {
            return None;
        }
        let tag = fields.next()?.to_string();
        let step = fields.next()?.parse().ok()?;
        Some(Marker {
            tag,
            step,
            rest: fields.map(str::to_string).collect(),
        })
    }
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol::new()
    }
}

/// Formats `SHOW ERRORS` rows (`Error\t1146\tTable 't' doesn't exist`) as the client would
/// print them (`ERROR 1146: Table 't' doesn't exist`), one per line.
pub fn error_text(rows: &[String]) -> String {
    rows.iter()
        .map(|row| {
            let mut f = row.splitn(3, '\t');
            let level = f.next().unwrap_or("").to_ascii_uppercase();
            match (f.next(), f.next()) {
                (Some(code), Some(message)) => format!("{level} {code}: {}", unescape(message)),
                _ => unescape(row),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Undoes batch mode's escaping of `\n`, `\t`, `\\` and `\0`.
pub fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// 128 random bits as hex, from the standard library's randomly keyed hasher (enough to make
/// markers unguessable for a script's output; not a secret).
fn random_hex() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for salt in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        h.write_u32(std::process::id());
        let _ = write!(out, "{:016x}", h.finish());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_frames_its_statement() {
        let p = Protocol::with_nonce("n1");
        let text = p.render(
            7,
            &Step {
                before: vec!["START TRANSACTION".into()],
                sql: "INSERT INTO t VALUES (1) -- trailing".into(),
                after: vec!["COMMIT".into()],
            },
        );
        assert_eq!(
            text,
            "START TRANSACTION\n$kun1$\n\
             INSERT INTO t VALUES (1) -- trailing\n$kun1$\n\
             SELECT 'n1', 'out', 7\n$kun1$\n\
             SHOW ERRORS\n$kun1$\n\
             SET @kubectl_upgrade_errors = @@error_count\n$kun1$\n\
             COMMIT\n$kun1$\n\
             SELECT 'n1', 'done', 7, @kubectl_upgrade_errors\n$kun1$\n"
        );
        assert_eq!(p.opening(), "DELIMITER $kun1$\n");
    }

    #[test]
    fn markers_need_the_nonce() {
        let p = Protocol::with_nonce("abc");
        assert_eq!(
            p.marker("abc\tdone\t3\t0"),
            Some(Marker {
                tag: "done".into(),
                step: 3,
                rest: vec!["0".into()]
            })
        );
        assert_eq!(p.marker("abd\tdone\t3\t0"), None);
        assert_eq!(p.marker("abc\tdone\tx"), None);
        assert_eq!(p.marker("some row"), None);
    }

    #[test]
    fn nonces_differ() {
        let a = Protocol::new();
        let b = Protocol::new();
        assert_ne!(a.delimiter(), b.delimiter());
        assert_eq!(a.nonce.len(), 32);
        // The client truncates delimiters to 15 characters.
        assert_eq!(a.delimiter().len(), 14);
        assert!(a.clashes(&format!("x{}y", a.delimiter())));
    }

    #[test]
    fn errors_read_like_the_client() {
        assert_eq!(
            error_text(&["Error\t1146\tTable 'e.t_task' doesn't exist".into()]),
            "ERROR 1146: Table 'e.t_task' doesn't exist"
        );
        assert_eq!(
            error_text(&["Error\t1064\tnear 'x'\\nat line 1".into()]),
            "ERROR 1064: near 'x'\nat line 1"
        );
        assert_eq!(unescape("a\\tb\\\\c"), "a\tb\\c");
    }
}
