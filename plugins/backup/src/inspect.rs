//! Reading a dump as it streams past, in constant memory: its sha256 and size, the rows of
//! every table, and whether it ends with the dump program's own trailer.
//!
//! What is recognised, in the text `mariadb-dump`/`mysqldump` write:
//! - `USE \`db\`;` at the start of a line switches the current database (`--databases`);
//! - `INSERT INTO \`t\` [(cols)] VALUES (…),(…);` counts one row per top-level tuple, with
//!   strings in `'…'` or `"…"` (backslash escapes and doubled quotes) skipped, so a `(` or `;`
//!   inside data never counts; one statement may span lines;
//! - everything between `DELIMITER ;;` and `DELIMITER ;` (routines, triggers, events) is body
//!   text, never counted, even if it holds an `INSERT`;
//! - the last non-empty line must start with `-- Dump completed`: the program writes it only
//!   after the last table (it is left out by `--compact`/`--skip-comments`, which the dump never
//!   passes and always overrides with `--comments`).
//!
//! The counts are the rows of the dump itself, which is the dump's consistent snapshot.

use std::collections::BTreeMap;

use sha2::Digest;

/// The longest line start kept to recognise a statement.
const HEAD: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At or in the first bytes of a line, collecting `head`.
    Line,
    /// In the rest of a line that is not an INSERT.
    Skip,
    /// Inside an INSERT's value list.
    Values {
        depth: u32,
        quote: Option<u8>,
        escape: bool,
    },
}

/// The running inspection of one dump.
pub struct Inspector {
    hasher: sha2::Sha256,
    bytes: u64,
    state: State,
    head: Vec<u8>,
    /// The first bytes of the last non-empty line.
    last_line: Vec<u8>,
    in_body: bool,
    database: Option<String>,
    table: Option<(String, String)>,
    rows: BTreeMap<(String, String), u64>,
    uses: u64,
}

/// What an inspection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bytes: u64,
    pub sha256: String,
    /// Rows per (database, table) seen in INSERT statements.
    pub rows: BTreeMap<(String, String), u64>,
    /// The last line is the dump's `-- Dump completed` trailer.
    pub trailer: bool,
    /// The text ended outside any statement (not cut inside a value list).
    pub complete: bool,
    /// The start of the last non-empty line, for messages.
    pub last_line: String,
}

/// Reads a backquoted identifier at the start of `text`; returns it and the rest.
fn ident(text: &[u8]) -> Option<(String, &[u8])> {
    let rest = text.strip_prefix(b"`")?;
    let mut name = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b'`' {
            if rest.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some((String::from_utf8_lossy(&name).into_owned(), &rest[i + 1..]));
        }
        name.push(rest[i]);
        i += 1;
    }
    None
}

impl Inspector {
    /// A new inspection; `database` is the current database before any `USE` (a dump of one
    /// database without `--databases`).
    pub fn new(database: Option<&str>) -> Inspector {
        Inspector {
            hasher: sha2::Sha256::new(),
            bytes: 0,
            state: State::Line,
            head: Vec::with_capacity(HEAD),
            last_line: Vec::new(),
            in_body: false,
            database: database.map(str::to_string),
            table: None,
            rows: BTreeMap::new(),
            uses: 0,
        }
    }

    /// Bytes seen so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// `USE` lines seen so far. `mariadb-dump` and `mysqldump` with `--databases` write the
    /// first one after the header, once the consistent snapshot of `--single-transaction` was
    /// taken (`START TRANSACTION WITH CONSISTENT SNAPSHOT` comes before any database is
    /// dumped), so one seen means the snapshot exists.
    pub fn databases_entered(&self) -> u64 {
        self.uses
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Line => {
                    let b = data[i];
                    i += 1;
                    // MariaDB 10.11+ breaks the line after VALUES; older dumps and MySQL do not.
                    if (b == b' ' || b == b'\n')
                        && !self.in_body
                        && self.head.ends_with(b" VALUES")
                        && self.start_values()
                    {
                        continue;
                    }
                    if b == b'\n' {
                        self.end_of_line();
                        continue;
                    }
                    if self.head.len() < HEAD {
                        self.head.push(b);
                    }
                    if self.head.len() >= HEAD {
                        self.state = State::Skip;
                    }
                }
                State::Skip => match memchr::memchr(b'\n', &data[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.end_of_line();
                    }
                    None => i = data.len(),
                },
                State::Values {
                    ref mut depth,
                    ref mut quote,
                    ref mut escape,
                } => {
                    // Only quotes, backslashes in quotes, parentheses and semicolons matter:
                    // skip to the next one (hex BLOBs and long strings are most of a dump).
                    if let Some(q) = *quote {
                        if *escape {
                            *escape = false;
                            i += 1;
                            continue;
                        }
                        match memchr::memchr2(b'\\', q, &data[i..]) {
                            None => i = data.len(),
                            Some(at) => {
                                i += at + 1;
                                if data[i - 1] == b'\\' {
                                    *escape = true;
                                } else {
                                    *quote = None;
                                }
                            }
                        }
                        continue;
                    }
                    match data[i..].iter().position(|&b| SPECIAL[b as usize]) {
                        None => {
                            i = data.len();
                            continue;
                        }
                        Some(at) => i += at,
                    }
                    let b = data[i];
                    i += 1;
                    match b {
                        b'\'' | b'"' if *depth > 0 => *quote = Some(b),
                        b'(' => {
                            if *depth == 0
                                && let Some(t) = &self.table
                            {
                                *self.rows.entry(t.clone()).or_insert(0) += 1;
                            }
                            *depth += 1;
                        }
                        b')' => *depth = depth.saturating_sub(1),
                        b';' if *depth == 0 => {
                            self.state = State::Skip;
                            self.table = None;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Enters an INSERT's value list when the line so far is its start.
    fn start_values(&mut self) -> bool {
        let Some(rest) = self.head.strip_prefix(b"INSERT INTO ") else {
            return false;
        };
        let Some((table, _)) = ident(rest) else {
            return false;
        };
        let db = self.database.clone().unwrap_or_default();
        self.rows.entry((db.clone(), table.clone())).or_insert(0);
        self.table = Some((db, table));
        self.state = State::Values {
            depth: 0,
            quote: None,
            escape: false,
        };
        true
    }

    fn end_of_line(&mut self) {
        let line = std::mem::take(&mut self.head);
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            self.last_line = trimmed.iter().take(256).copied().collect();
        }
        if trimmed.starts_with(b"DELIMITER ") {
            self.in_body = trimmed != b"DELIMITER ;";
        } else if !self.in_body
            && let Some(rest) = trimmed.strip_prefix(b"USE ")
            && let Some((db, _)) = ident(rest)
        {
            self.database = Some(db);
            self.uses += 1;
        }
        self.head = line;
        self.head.clear();
        self.state = State::Line;
    }

    /// Ends the inspection.
    pub fn finish(mut self) -> Summary {
        if self.state == State::Line && !self.head.is_empty() {
            self.end_of_line();
        }
        let complete = !matches!(self.state, State::Values { .. });
        let trailer = self.last_line.starts_with(b"-- Dump completed");
        Summary {
            bytes: self.bytes,
            sha256: upgrade_shared::backup_manifest::hex(&self.hasher.finalize()),
            rows: self.rows,
            trailer,
            complete,
            last_line: String::from_utf8_lossy(&self.last_line).into_owned(),
        }
    }
}

/// The bytes that change the state inside an INSERT's value list outside quotes.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b'(' as usize] = true;
    t[b')' as usize] = true;
    t[b';' as usize] = true;
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB
--
-- Current Database: `eggroll_meta`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `eggroll_meta`;

USE `eggroll_meta`;
DROP TABLE IF EXISTS `server_node`;
CREATE TABLE `server_node` (
  `id` int NOT NULL COMMENT 'a (tricky); comment',
  PRIMARY KEY (`id`)
);
LOCK TABLES `server_node` WRITE;
INSERT INTO `server_node` VALUES (1,'a (b), c;','x\\\\'),(2,'it''s',0xDEAD),(3,\"q\\\"(\",NULL);
INSERT INTO `server_node` VALUES (4,'line\\nbreak');
UNLOCK TABLES;
INSERT INTO `empty_is_zero` VALUES ();
DELIMITER ;;
CREATE PROCEDURE p() BEGIN
INSERT INTO `server_node` VALUES (99);
END ;;
DELIMITER ;

USE `other`;
INSERT INTO `t` (`a`, `b`) VALUES (1,2),
(3,4);
INSERT INTO `mariadb_11` VALUES
(1,'a'),
(2,'b');
-- Dump completed on 2026-12-01  9:04:10
";

    fn inspect(chunks: &[&[u8]]) -> Summary {
        let mut i = Inspector::new(None);
        for c in chunks {
            i.update(c);
        }
        i.finish()
    }

    fn rows(s: &Summary) -> Vec<(String, String, u64)> {
        s.rows
            .iter()
            .map(|((d, t), n)| (d.clone(), t.clone(), *n))
            .collect()
    }

    #[test]
    fn counts_rows_per_table_and_finds_the_trailer() {
        let s = inspect(&[DUMP.as_bytes()]);
        assert!(s.trailer, "{}", s.last_line);
        assert!(s.complete);
        assert_eq!(
            rows(&s),
            vec![
                ("eggroll_meta".into(), "empty_is_zero".into(), 1),
                ("eggroll_meta".into(), "server_node".into(), 4),
                ("other".into(), "mariadb_11".into(), 2),
                ("other".into(), "t".into(), 2),
            ]
        );
        assert_eq!(s.bytes, DUMP.len() as u64);
    }

    #[test]
    fn any_chunking_gives_the_same_answer() {
        let whole = inspect(&[DUMP.as_bytes()]);
        for size in [1, 2, 3, 7, 64] {
            let chunks: Vec<&[u8]> = DUMP.as_bytes().chunks(size).collect();
            assert_eq!(inspect(&chunks), whole, "chunks of {size}");
        }
    }

    #[test]
    fn a_cut_dump_has_no_trailer_and_may_end_inside_a_statement() {
        let cut = &DUMP[..DUMP.find("(2,'it").unwrap()];
        let s = inspect(&[cut.as_bytes()]);
        assert!(!s.trailer);
        assert!(!s.complete);
        let no_trailer = &DUMP[..DUMP.find("-- Dump completed").unwrap()];
        let s = inspect(&[no_trailer.as_bytes()]);
        assert!(s.complete);
        assert!(!s.trailer);
        assert!(
            s.last_line.starts_with("INSERT INTO `mariadb_11`"),
            "{}",
            s.last_line
        );
    }

    #[test]
    fn the_digest_is_sha256_of_every_byte() {
        let s = inspect(&[b"hello ", b"world"]);
        assert_eq!(
            s.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn use_lines_are_counted_outside_routine_bodies_only() {
        let s = DUMP.as_bytes();
        let mut i = Inspector::new(None);
        let first_use = DUMP.find("USE `eggroll_meta`").unwrap();
        i.update(&s[..first_use]);
        assert_eq!(i.databases_entered(), 0, "the header has no USE");
        i.update(&s[first_use..]);
        assert_eq!(i.databases_entered(), 2);
        let mut body = Inspector::new(None);
        body.update(b"DELIMITER ;;\nUSE `x`;\nDELIMITER ;\n");
        assert_eq!(body.databases_entered(), 0);
    }

    #[test]
    fn a_single_database_dump_counts_under_the_given_name() {
        let mut i = Inspector::new(Some("shop"));
        i.update(b"INSERT INTO `items` VALUES (1),(2);\n-- Dump completed\n");
        let s = i.finish();
        assert_eq!(rows(&s), vec![("shop".into(), "items".into(), 2)]);
        assert!(s.trailer);
    }
}
