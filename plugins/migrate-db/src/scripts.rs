//! The scripts a migration runs: the profile's embedded ones (`sql/<dir>/FROM-TO.sql`) or the
//! `.sql` files of `--scripts-dir`, chained from one version to another, each with its sha256
//! and its statements.
//!
//! Checksums: a script's `sha256` is over its exact bytes, so any edit is drift. Resuming a
//! partly run script compares the statements that already ran instead (the *prefix hash* of
//! statements `1..=k`: sha256 over each statement's text followed by a NUL byte), so a fix to
//! the statement that failed, or to any later one, does not stop the resume.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};
use upgrade_shared::version::Version;

use crate::split::{self, Statement};

/// One script file, read and split.
#[derive(Debug, Clone)]
pub struct Script {
    /// File name (`1.7.2-1.8.0.sql`), the key in the history table.
    pub file: String,
    pub from: Version,
    pub to: Version,
    pub sha256: String,
    pub text: String,
    pub statements: Vec<Statement>,
}

/// Where the scripts came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Built into the binary from `sql/<dir>/`.
    Embedded { dir: String },
    /// Read from `--scripts-dir`.
    Directory { path: String },
}

impl Origin {
    /// How the origin reads in a plan.
    pub fn describe(&self) -> String {
        match self {
            Origin::Embedded { dir } => format!("built in (sql/{dir}/)"),
            Origin::Directory { path } => format!("directory {path}"),
        }
    }
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Script {
    /// Reads and splits one script; `file` must be named `FROM-TO.sql`.
    pub fn parse(file: &str, text: &str) -> anyhow::Result<Script> {
        let Some((from, to)) = upgrade_shared::sql::file_versions(file) else {
            bail!(
                "{file}: a script must be named FROM-TO.sql with two versions (e.g. 1.7.2-1.8.0.sql)"
            );
        };
        let statements = split::split(text).with_context(|| format!("cannot split {file}"))?;
        Ok(Script {
            file: file.to_string(),
            from,
            to,
            sha256: sha256_hex(text.as_bytes()),
            text: text.to_string(),
            statements,
        })
    }

    /// The prefix hash of statements `1..=k` (see the module docs); `k = 0` hashes nothing.
    pub fn prefix_sha256(&self, k: usize) -> String {
        let mut hasher = Sha256::new();
        for st in self.statements.iter().take(k) {
            hasher.update(st.text.as_bytes());
            hasher.update([0u8]);
        }
        hex(&hasher.finalize())
    }
}

/// Every script of the origin, sorted by file name.
pub fn load(origin: &Origin) -> anyhow::Result<Vec<Script>> {
    let mut scripts = match origin {
        Origin::Embedded { dir } => upgrade_shared::sql::SCRIPTS
            .iter()
            .filter(|(app, _, _)| app == dir)
            .map(|(_, file, text)| Script::parse(file, text))
            .collect::<anyhow::Result<Vec<_>>>()?,
        Origin::Directory { path } => load_dir(Path::new(path))?,
    };
    scripts.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(scripts)
}

fn load_dir(dir: &Path) -> anyhow::Result<Vec<Script>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the scripts directory {}", dir.display()))?;
    let mut scripts = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sql") || !entry.path().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        scripts.push(Script::parse(&name, &text)?);
    }
    Ok(scripts)
}

/// The scripts that lead from `from` to `to`, in order.
pub fn chain(all: &[Script], from: &Version, to: &Version) -> anyhow::Result<Vec<Script>> {
    let Some(path) = upgrade_shared::sql::shortest_path(all, from, to, |s| (&s.from, &s.to)) else {
        let known: Vec<&str> = all.iter().map(|s| s.file.as_str()).collect();
        bail!(
            "no chain of scripts leads from {} to {} (scripts: {})",
            from.canonical(),
            to.canonical(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    Ok(path.into_iter().map(|i| all[i].clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn the_embedded_fate_chain() {
        let all = load(&Origin::Embedded { dir: "fate".into() }).unwrap();
        let chain = chain(&all, &v("v1.7.2"), &v("1.9.0")).unwrap();
        let files: Vec<&str> = chain.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(files, ["1.7.2-1.8.0.sql", "1.8.0-1.9.0.sql"]);
        assert_eq!(chain[0].statements.len(), 9);
        assert_eq!(chain[1].statements.len(), 21);
        let text = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/fate/1.7.2-1.8.0.sql"),
        )
        .unwrap();
        assert_eq!(chain[0].sha256, sha256_hex(&text));
        assert_eq!(chain[0].sha256.len(), 64);
    }

    #[test]
    fn no_chain_names_the_scripts() {
        let all = load(&Origin::Embedded { dir: "fate".into() }).unwrap();
        let err = chain(&all, &v("1.9.0"), &v("1.7.2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("from 1.9.0 to 1.7.2"), "{err}");
        assert!(err.contains("1.7.2-1.8.0.sql, 1.8.0-1.9.0.sql"), "{err}");
        assert!(chain(&all, &v("1.8.0"), &v("1.8.0")).unwrap().is_empty());
    }

    #[test]
    fn a_directory_of_scripts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1.0.0-1.1.0.sql"),
            "CREATE TABLE a (x INT);\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("1.1.0-2.0.0.sql"),
            "ALTER TABLE a ADD y INT; DO 0;",
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a script").unwrap();
        let all = load(&Origin::Directory {
            path: dir.path().display().to_string(),
        })
        .unwrap();
        assert_eq!(all.len(), 2);
        let chain = chain(&all, &v("1.0.0"), &v("2.0.0")).unwrap();
        assert_eq!(chain[1].statements.len(), 2);

        std::fs::write(dir.path().join("oops.sql"), "DO 0;").unwrap();
        let err = load(&Origin::Directory {
            path: dir.path().display().to_string(),
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("oops.sql: a script must be named FROM-TO.sql")
        );
    }

    #[test]
    fn an_unsplittable_script_names_file_and_line() {
        let err = Script::parse("1.0.0-1.1.0.sql", "DO 0;\nSELECT 'x;").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "cannot split 1.0.0-1.1.0.sql: line 2: a string opened here is never closed"
        );
    }

    #[test]
    fn prefix_hashes_ignore_later_statements() {
        let a = Script::parse("1.0.0-1.1.0.sql", "DO 1; DO 2; DO 3;").unwrap();
        let b = Script::parse("1.0.0-1.1.0.sql", "DO 1; DO 2; DO 'fixed';").unwrap();
        assert_ne!(a.sha256, b.sha256);
        assert_eq!(a.prefix_sha256(2), b.prefix_sha256(2));
        assert_ne!(a.prefix_sha256(3), b.prefix_sha256(3));
        assert_ne!(a.prefix_sha256(1), a.prefix_sha256(2));
        // Comments and spacing between statements are not part of any statement.
        let c = Script::parse("1.0.0-1.1.0.sql", "-- note\nDO 1;\n\n  DO 2;").unwrap();
        assert_eq!(a.prefix_sha256(2), c.prefix_sha256(2));
    }
}
