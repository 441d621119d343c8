//! Splits a schema script into statements the way the `mysql`/`mariadb` command-line client
//! does, so each statement can be run, confirmed and recorded on its own.
//!
//! What the splitter understands, as the client does in batch mode:
//! - the delimiter (`;` until a `DELIMITER xyz` line changes it; the command is only read at
//!   the start of a statement, on its own line, and the rest of that line is its argument);
//! - strings in `'…'` and `"…"` (backslash escapes and doubled quotes), identifiers in
//!   `` `…` `` (doubled backticks), none of which end a statement;
//! - comments: `# …` and `-- …` (two dashes then a space, a control character or the end) to
//!   the end of the line, and `/* … */`. Executable comments (`/*! … */`, `/*M! … */`) are code:
//!   the server runs what they hold, so they start a statement but never end one.
//!
//! A statement's text runs from its first character of code to the delimiter (comments before
//! it are dropped, comments inside it are kept); its line is where that text starts. Segments
//! with no code (`;;`, a trailing comment) are not statements. A last statement without a
//! delimiter still counts: the client runs it at the end of its input.

use std::fmt;

/// What a statement does to the database, which decides how it is confirmed and resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Changes only the session (`SET @v`, `SET NAMES`, `PREPARE`, `DEALLOCATE`, `USE`, table
    /// locks). Leaves nothing in the database, so a resumed run replays it.
    Session,
    /// Reads or changes rows (`INSERT`, `UPDATE`, `DELETE`, `SELECT`, `DO`, …). Run in a
    /// transaction together with its history record, so it either counts or did not happen.
    Rows,
    /// Opens a transaction (`START TRANSACTION`, `BEGIN`).
    Begin,
    /// Ends a transaction (`COMMIT`, `ROLLBACK`).
    End,
    /// Everything else: DDL, `EXECUTE`, `CALL`, grants. MySQL commits it on its own, so a run
    /// cut while it executes cannot tell whether it committed.
    Effect,
}

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position in the script.
    pub index: usize,
    /// 1-based line where the statement's text starts.
    pub line: usize,
    /// The statement without its delimiter or the comments before it.
    pub text: String,
    pub kind: Kind,
}

/// Why a script cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A string or quoted identifier opened and never closed.
    #[error("line {line}: {what} opened here is never closed")]
    Unterminated { what: &'static str, line: usize },
    /// `DELIMITER` without a delimiter after it.
    #[error("line {line}: DELIMITER needs a delimiter after it")]
    EmptyDelimiter { line: usize },
    /// The client refuses a delimiter with a backslash.
    #[error("line {line}: a DELIMITER cannot contain a backslash")]
    BackslashDelimiter { line: usize },
}

/// Splits `text` into statements.
pub fn split(text: &str) -> Result<Vec<Statement>, SplitError> {
    Splitter {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
        delimiter: ";".to_string(),
        out: Vec::new(),
    }
    .run()
}

struct Splitter<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    delimiter: String,
    out: Vec<Statement>,
}

impl Splitter<'_> {
    fn run(mut self) -> Result<Vec<Statement>, SplitError> {
        // Start of the current statement's code, and its line.
        let mut start: Option<(usize, usize)> = None;
        while self.pos < self.bytes.len() {
            if start.is_none() && self.at_line_start() && self.delimiter_command()? {
                continue;
            }
            let rest = &self.text[self.pos..];
            if rest.starts_with(self.delimiter.as_str()) {
                self.finish(start.take(), self.pos);
                self.pos += self.delimiter.len();
                continue;
            }
            let c = self.bytes[self.pos];
            match c {
                b'\'' | b'"' | b'`' => {
                    start.get_or_insert((self.pos, self.line));
                    self.quoted(c)?;
                }
                b'#' => self.line_comment(),
                b'-' if rest.starts_with("--") && dash_comment_follows(&rest[2..]) => {
                    self.line_comment()
                }
                b'/' if rest.starts_with("/*") => {
                    let executable = rest.starts_with("/*!") || rest.starts_with("/*M!");
                    if executable {
                        start.get_or_insert((self.pos, self.line));
                    }
                    self.block_comment()?;
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                c if c.is_ascii_whitespace() => self.pos += 1,
                _ => {
                    start.get_or_insert((self.pos, self.line));
                    self.pos += utf8_len(c);
                }
            }
        }
        self.finish(start, self.bytes.len());
        Ok(self.out)
    }

    fn finish(&mut self, start: Option<(usize, usize)>, end: usize) {
        let Some((from, line)) = start else { return };
        let text = self.text[from..end].trim_end().to_string();
        let index = self.out.len() + 1;
        let kind = classify(&text);
        self.out.push(Statement {
            index,
            line,
            text,
            kind,
        });
    }

    fn at_line_start(&self) -> bool {
        self.text[..self.pos]
            .rsplit('\n')
            .next()
            .is_none_or(|before| before.trim().is_empty())
    }

    /// Reads a `DELIMITER xyz` line at the current position, if there is one.
    fn delimiter_command(&mut self) -> Result<bool, SplitError> {
        let rest = &self.text[self.pos..];
        let word = rest.get(..9);
        let after = rest.as_bytes().get(9);
        if !word.is_some_and(|w| w.eq_ignore_ascii_case("delimiter"))
            || !after.is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            return Ok(false);
        }
        let end = rest.find('\n').unwrap_or(rest.len());
        let argument = rest[9..end].split_whitespace().next().unwrap_or("");
        if argument.is_empty() {
            return Err(SplitError::EmptyDelimiter { line: self.line });
        }
        if argument.contains('\\') {
            return Err(SplitError::BackslashDelimiter { line: self.line });
        }
        self.delimiter = argument.to_string();
        self.pos += end;
        Ok(true)
    }

    fn quoted(&mut self, quote: u8) -> Result<(), SplitError> {
        let line = self.line;
        let what = match quote {
            b'`' => "a quoted identifier",
            _ => "a string",
        };
        self.pos += 1;
        while self.pos < self.bytes.len() {
            let c = self.bytes[self.pos];
            if c == b'\n' {
                self.line += 1;
            }
            if c == b'\\' && quote != b'`' {
                if self.bytes.get(self.pos + 1) == Some(&b'\n') {
                    self.line += 1;
                }
                self.pos += 2;
                continue;
            }
            if c == quote {
                if self.bytes.get(self.pos + 1) == Some(&quote) {
                    self.pos += 2;
                    continue;
                }
                self.pos += 1;
                return Ok(());
            }
            self.pos += 1;
        }
        Err(SplitError::Unterminated { what, line })
    }

    fn line_comment(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.find('\n').unwrap_or(rest.len());
    }

    fn block_comment(&mut self) -> Result<(), SplitError> {
        let line = self.line;
        let rest = &self.text[self.pos + 2..];
        let Some(end) = rest.find("*/") else {
            return Err(SplitError::Unterminated {
                what: "a /* comment",
                line,
            });
        };
        self.line += rest[..end].matches('\n').count();
        self.pos += 2 + end + 2;
        Ok(())
    }
}

/// `--` starts a comment only when a space, a control character or the end follows (MySQL's
/// rule, so `1--1` stays arithmetic).
fn dash_comment_follows(rest: &str) -> bool {
    rest.bytes()
        .next()
        .is_none_or(|b| b == b' ' || b.is_ascii_control())
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The leading words of a statement, upper-cased, skipping an executable comment's opener
/// and opening parentheses.
fn leading_words(text: &str, n: usize) -> Vec<String> {
    let mut t = text.trim_start();
    for opener in ["/*M!", "/*!"] {
        if let Some(rest) = t.strip_prefix(opener) {
            t = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        }
    }
    let t = t.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
    t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.'))
        .filter(|w| !w.is_empty())
        .take(n)
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// Classifies a statement by its leading keywords.
pub fn classify(text: &str) -> Kind {
    let words = leading_words(text, 2);
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    match first {
        "SET" => {
            let global = matches!(
                second,
                "GLOBAL"
                    | "PERSIST"
                    | "PERSIST_ONLY"
                    | "PASSWORD"
                    | "DEFAULT"
                    | "ROLE"
                    | "STATEMENT"
            ) || second.starts_with("@@GLOBAL.")
                || second.starts_with("@@PERSIST");
            if global { Kind::Effect } else { Kind::Session }
        }
        "PREPARE" | "DEALLOCATE" | "USE" | "LOCK" | "UNLOCK" => Kind::Session,
        "DROP" if second == "PREPARE" => Kind::Session,
        "START" if second == "TRANSACTION" => Kind::Begin,
        "BEGIN" if second.is_empty() || second == "WORK" => Kind::Begin,
        "COMMIT" => Kind::End,
        "ROLLBACK" if second != "TO" => Kind::End,
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "SELECT" | "DO" | "WITH" | "VALUES"
        | "TABLE" | "SAVEPOINT" | "RELEASE" | "ROLLBACK" => Kind::Rows,
        _ => Kind::Effect,
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Session => "session",
            Kind::Rows => "rows",
            Kind::Begin => "begin",
            Kind::End => "end",
            Kind::Effect => "effect",
        })
    }
}

/// The statement's first line, shortened, for reports.
pub fn summary(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut short: String = line.chars().take(72).collect();
    if short.len() < line.len() || text.lines().nth(1).is_some() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql).unwrap().into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn plain_statements_and_a_last_one_without_delimiter() {
        assert_eq!(
            texts("SELECT 1;\nSELECT 2 ;  SELECT 3"),
            ["SELECT 1", "SELECT 2", "SELECT 3"]
        );
    }

    #[test]
    fn delimiters_inside_strings_and_identifiers_do_not_split() {
        let sql = "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;', 'back\\';slash');\n\
                   SELECT `we;ird``name;` FROM t;";
        assert_eq!(
            texts(sql),
            [
                "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s;', 'back\\';slash')",
                "SELECT `we;ird``name;` FROM t"
            ]
        );
    }

    #[test]
    fn comments_of_all_three_kinds() {
        let sql = "-- leading; comment\n# hash; comment\n/* block;\n comment */ SELECT 1; -- after;\n\
                   SELECT 2 /* inside; */ + 1;\nSELECT 3 # tail;\n;\n";
        let st = split(sql).unwrap();
        assert_eq!(
            st.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(),
            ["SELECT 1", "SELECT 2 /* inside; */ + 1", "SELECT 3 # tail;"]
        );
        assert_eq!(st.iter().map(|s| s.line).collect::<Vec<_>>(), [4, 5, 6]);
    }

    #[test]
    fn double_dash_needs_a_space_to_be_a_comment() {
        assert_eq!(texts("SELECT 1--1;SELECT 2"), ["SELECT 1--1", "SELECT 2"]);
        assert_eq!(texts("SELECT 1 --\n;"), ["SELECT 1 --"]);
        assert_eq!(texts("SELECT 1 --\tx;\n;"), ["SELECT 1 --\tx;"]);
    }

    #[test]
    fn executable_comments_are_code() {
        let st =
            split("/*!40101 SET NAMES utf8mb4 */;\n/*M!100100 SET @x = 1 */;\n/* not */ DO 0;")
                .unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(st[0].text, "/*!40101 SET NAMES utf8mb4 */");
        assert_eq!(st[0].kind, Kind::Session);
        assert_eq!(st[1].kind, Kind::Session);
        assert_eq!(st[2].text, "DO 0");
    }

    #[test]
    fn delimiter_blocks() {
        let sql = "CREATE TABLE a (x INT);\n\
                   DELIMITER //\n\
                   CREATE PROCEDURE p()\nBEGIN\n  INSERT INTO a VALUES (1);\n  SELECT ';//';\nEND//\n\
                   delimiter $$ trailing words ignored\n\
                   CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 2; END$$\n\
                   DELIMITER ;\n\
                   CALL p();\n";
        let st = split(sql).unwrap();
        assert_eq!(st.len(), 4, "{st:#?}");
        assert_eq!(
            st[1].text,
            "CREATE PROCEDURE p()\nBEGIN\n  INSERT INTO a VALUES (1);\n  SELECT ';//';\nEND"
        );
        assert_eq!(st[1].line, 3);
        assert_eq!(
            st[2].text,
            "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 2; END"
        );
        assert_eq!(st[3].text, "CALL p()");
        assert_eq!(st[3].line, 11);
        assert_eq!(st[3].kind, Kind::Effect);
    }

    #[test]
    fn delimiter_word_inside_a_statement_is_not_a_command() {
        // Only at the start of a statement does the client read DELIMITER.
        let st = split("SELECT\ndelimiter FROM t;\nSELECT 2;").unwrap();
        assert_eq!(st[0].text, "SELECT\ndelimiter FROM t");
        assert_eq!(st.len(), 2);
    }

    #[test]
    fn multi_line_strings_keep_line_numbers() {
        let st = split("SELECT 'a\nb\nc';\n\nSELECT `x\ny`;\n/* a\nb */\nSELECT 3;").unwrap();
        assert_eq!(st.iter().map(|s| s.line).collect::<Vec<_>>(), [1, 5, 9]);
    }

    #[test]
    fn empty_segments_and_comment_only_scripts() {
        assert!(
            split(";;\n-- only a comment\n/* and this */")
                .unwrap()
                .is_empty()
        );
        assert!(split("").unwrap().is_empty());
    }

    #[test]
    fn unicode_text_is_kept_whole() {
        assert_eq!(
            texts("SELECT 'héllo; wörld' AS ä;SELECT '✓'"),
            ["SELECT 'héllo; wörld' AS ä", "SELECT '✓'"]
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            split("SELECT 1;\nSELECT 'open;\n"),
            Err(SplitError::Unterminated {
                what: "a string",
                line: 2
            })
        );
        assert_eq!(
            split("SELECT `x;"),
            Err(SplitError::Unterminated {
                what: "a quoted identifier",
                line: 1
            })
        );
        assert_eq!(
            split("\n\n/* never closed"),
            Err(SplitError::Unterminated {
                what: "a /* comment",
                line: 3
            })
        );
        assert_eq!(
            split("DELIMITER \nSELECT 1;"),
            Err(SplitError::EmptyDelimiter { line: 1 })
        );
        assert_eq!(
            split("DELIMITER \\\\"),
            Err(SplitError::BackslashDelimiter { line: 1 })
        );
    }

    #[test]
    fn a_hash_inside_a_string_is_not_a_comment() {
        assert_eq!(
            texts("SELECT '#;--' ; SELECT 2"),
            ["SELECT '#;--'", "SELECT 2"]
        );
    }

    #[test]
    fn kinds() {
        for (sql, kind) in [
            ("SET @fate_ddl = IF(1, 'a', 'b')", Kind::Session),
            ("set names utf8mb4", Kind::Session),
            ("SET SESSION sql_mode = ''", Kind::Session),
            ("SET GLOBAL max_connections = 10", Kind::Effect),
            ("SET @@global.x = 1", Kind::Effect),
            ("PREPARE s FROM @q", Kind::Session),
            ("DEALLOCATE PREPARE s", Kind::Session),
            ("DROP PREPARE s", Kind::Session),
            ("EXECUTE s", Kind::Effect),
            ("ALTER TABLE t ADD COLUMN c INT", Kind::Effect),
            ("DROP TABLE t", Kind::Effect),
            ("INSERT INTO t VALUES (1)", Kind::Rows),
            ("(SELECT 1)", Kind::Rows),
            ("do sleep(1)", Kind::Rows),
            ("START TRANSACTION", Kind::Begin),
            ("BEGIN", Kind::Begin),
            ("BEGIN WORK", Kind::Begin),
            ("COMMIT", Kind::End),
            ("ROLLBACK", Kind::End),
            ("ROLLBACK TO SAVEPOINT a", Kind::Rows),
            ("CALL p()", Kind::Effect),
            ("/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */", Kind::Session),
        ] {
            assert_eq!(classify(sql), kind, "{sql}");
        }
    }

    #[test]
    fn the_fate_scripts_split_into_their_blocks() {
        for (_, file, text) in upgrade_shared::sql::SCRIPTS {
            let st = split(text).unwrap();
            // Every change is SET / PREPARE / EXECUTE / DEALLOCATE, and a final SET.
            assert_eq!(st.len() % 4, 1, "{file}: {st:#?}");
            for block in st.chunks(4).filter(|c| c.len() == 4) {
                assert!(block[0].text.starts_with("SET @fate_ddl = IF("), "{file}");
                assert_eq!(block[1].text, "PREPARE fate_stmt FROM @fate_ddl");
                assert_eq!(block[2].text, "EXECUTE fate_stmt");
                assert_eq!(block[3].text, "DEALLOCATE PREPARE fate_stmt");
                assert_eq!(
                    block.iter().map(|s| s.kind).collect::<Vec<_>>(),
                    [Kind::Session, Kind::Session, Kind::Effect, Kind::Session]
                );
            }
            assert_eq!(st.last().unwrap().text, "SET @fate_ddl = NULL");
        }
    }

    #[test]
    fn summaries_are_one_short_line() {
        assert_eq!(summary("SELECT 1"), "SELECT 1");
        assert_eq!(summary("SET @a = IF(\n 1)"), "SET @a = IF(…");
        assert_eq!(summary(&"x".repeat(100)).chars().count(), 73);
    }
}
