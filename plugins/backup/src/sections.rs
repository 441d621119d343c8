//! Choosing and renaming databases in a dump while it streams into the server, line by line in
//! memory bounded by the longest line (the dump program's `--net-buffer-length`, 1 MiB).
//!
//! A dump made with `--databases` introduces each database with `-- Current Database: \`x\``,
//! `CREATE DATABASE … \`x\` …;` and `USE \`x\`;` at the start of lines. To restore one database
//! of it under another name (a scratch database for `verify --restore-test`, `--database D`),
//! the other databases' sections are left out, `CREATE DATABASE` lines of a renamed database
//! are dropped (the restore creates the target itself) and `USE` names the target. The header
//! before the first section (session settings such as `FOREIGN_KEY_CHECKS=0` and
//! `TIME_ZONE='+00:00'`) is always kept. Lines between `DELIMITER ;;` and `DELIMITER ;` are
//! bodies of routines and triggers and are never read as section markers.

use std::io::{BufRead, Write};

/// What to keep and under which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Keep only this database's section (`None`: every section).
    pub only: Option<String>,
    /// Load it into this database instead.
    pub into: Option<String>,
}

/// The filter's state while lines go past.
#[derive(Debug)]
pub struct SectionFilter {
    selection: Selection,
    current: Option<String>,
    in_body: bool,
}

/// What becomes of one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

fn ident_after<'a>(line: &'a [u8], prefix: &[u8]) -> Option<String> {
    let rest: &'a [u8] = line.strip_prefix(prefix)?;
    let start = rest.iter().position(|&b| b == b'`')?;
    let rest = &rest[start + 1..];
    let mut name = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b'`' {
            if rest.get(i + 1) == Some(&b'`') {
                name.push(b'`');
                i += 2;
                continue;
            }
            return Some(String::from_utf8_lossy(&name).into_owned());
        }
        name.push(rest[i]);
        i += 1;
    }
    None
}

impl SectionFilter {
    pub fn new(selection: Selection) -> Self {
        SectionFilter {
            selection,
            current: None,
            in_body: false,
        }
    }

    fn wanted(&self) -> bool {
        match (&self.selection.only, &self.current) {
            (None, _) | (_, None) => true,
            (Some(want), Some(cur)) => want == cur,
        }
    }

    /// Decides about one line (without its newline).
    pub fn line(&mut self, line: &[u8]) -> Line {
        let t = line.trim_ascii_end();
        if t.starts_with(b"DELIMITER ") {
            self.in_body = t != b"DELIMITER ;";
        } else if !self.in_body {
            if let Some(db) = ident_after(t, b"-- Current Database: ") {
                self.current = Some(db);
            } else if t.starts_with(b"CREATE DATABASE ") {
                if let Some(db) = ident_after(t, b"CREATE DATABASE ") {
                    self.current = Some(db);
                }
                if !self.wanted() || self.selection.into.is_some() {
                    return Line::Drop;
                }
                return Line::Keep;
            } else if let Some(db) = ident_after(t, b"USE ").filter(|_| t.starts_with(b"USE `")) {
                self.current = Some(db);
                if !self.wanted() {
                    return Line::Drop;
                }
                if let Some(into) = &self.selection.into {
                    return Line::Replace(
                        format!("USE {};", upgrade_shared::mysql::quote_ident(into)).into_bytes(),
                    );
                }
                return Line::Keep;
            }
        }
        if self.wanted() {
            Line::Keep
        } else {
            Line::Drop
        }
    }
}

/// Copies `input` to `output` through the filter.
pub fn filter(
    mut input: impl BufRead,
    mut output: impl Write,
    selection: Selection,
) -> std::io::Result<()> {
    let mut f = SectionFilter::new(selection);
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        match f.line(body) {
            Line::Keep => output.write_all(&line)?,
            Line::Drop => {}
            Line::Replace(new) => {
                output.write_all(&new)?;
                output.write_all(b"\n")?;
            }
        }
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "/*!40014 SET FOREIGN_KEY_CHECKS=0 */;
--
-- Current Database: `a`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE `a`;
INSERT INTO `t` VALUES (1);
DELIMITER ;;
CREATE PROCEDURE p() BEGIN
USE `b`;
END ;;
DELIMITER ;

--
-- Current Database: `b`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `b`;

USE `b`;
INSERT INTO `u` VALUES (2);
-- Dump completed on 2026-12-01
";

    fn run(sel: Selection) -> String {
        let mut out = Vec::new();
        filter(DUMP.as_bytes(), &mut out, sel).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn everything_passes_without_a_selection() {
        assert_eq!(
            run(Selection {
                only: None,
                into: None
            }),
            DUMP
        );
    }

    #[test]
    fn one_database_into_another_name() {
        let out = run(Selection {
            only: Some("a".into()),
            into: Some("scratch_1".into()),
        });
        assert!(out.starts_with("/*!40014 SET FOREIGN_KEY_CHECKS=0 */;\n"));
        assert!(out.contains("USE `scratch_1`;\nINSERT INTO `t` VALUES (1);"));
        assert!(!out.contains("CREATE DATABASE"));
        // The procedure body is kept as written.
        assert!(out.contains("CREATE PROCEDURE p() BEGIN\nUSE `b`;\nEND ;;"));
        assert!(!out.contains("INSERT INTO `u`"));
        assert!(!out.contains("Dump completed"));
    }

    #[test]
    fn the_second_database_alone_keeps_the_header() {
        let out = run(Selection {
            only: Some("b".into()),
            into: None,
        });
        assert!(out.starts_with("/*!40014 SET FOREIGN_KEY_CHECKS=0 */;\n"));
        assert!(out.contains("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `b`;"));
        assert!(out.contains("USE `b`;\nINSERT INTO `u` VALUES (2);"));
        assert!(!out.contains("INSERT INTO `t`"));
        assert!(!out.contains("PROCEDURE"));
    }
}
