//! A schema fingerprint check for `baseline`: does the database have the tables and columns a
//! version has, and none that only later versions add? The profile declares each version's
//! entries (`table` or `table.column`); the database answers with information_schema.

use std::collections::BTreeSet;

use upgrade_shared::profile::{Fingerprint, Profile};
use upgrade_shared::version::Version;

use crate::history;
use crate::start::Fit;

/// The profile's fingerprint of a version (the numbers compared: `v1.8.0` is `1.8.0-release`).
pub fn of_version(profile: &Profile, v: &Version) -> Option<Fingerprint> {
    profile
        .sql
        .as_ref()?
        .fingerprints
        .iter()
        .find(|f| Version::parse(&f.version.value).is_ok_and(|fv| fv.cmp_numbers(v).is_eq()))
        .cloned()
}

/// How a schema (as [`parse_columns`] reads it) fits the profile's fingerprint of `v`.
pub fn fit(profile: &Profile, v: &Version, schema: &BTreeSet<String>) -> Fit {
    match of_version(profile, v) {
        None => Fit::NoFingerprint,
        Some(fp) => match mismatches(&fp, schema) {
            m if m.is_empty() => Fit::Matches,
            m => Fit::Differs(m),
        },
    }
}

/// SQL that prints `table<TAB>column` for every column of `database` (hex, so no name is
/// misread).
pub fn columns_query(database: &str) -> String {
    format!(
        "SELECT HEX(TABLE_NAME), HEX(COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {}",
        history::literal(database)
    )
}

/// Parses [`columns_query`]'s output into `table` and `table.column` entries.
pub fn parse_columns(lines: &[String]) -> BTreeSet<String> {
    let unhex = |s: &str| -> String {
        let bytes: Vec<u8> = (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let mut out = BTreeSet::new();
    for line in lines {
        if let Some((t, c)) = line.split_once('\t') {
            let (t, c) = (unhex(t), unhex(c));
            out.insert(format!("{t}.{c}"));
            out.insert(t);
        }
    }
    out
}

/// What does not match, one line each (empty: the schema is at the fingerprint's version).
pub fn mismatches(fp: &Fingerprint, schema: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for entry in &fp.present {
        if !schema.contains(entry) {
            out.push(format!("{entry} is missing"));
        }
    }
    for entry in &fp.absent {
        if schema.contains(entry) {
            out.push(format!("{entry} exists (a later version adds it)"));
        }
    }
    out
}

/// The fingerprint's own checksum, recorded with the baseline.
pub fn digest(fp: &Fingerprint) -> String {
    let text = format!(
        "{}\npresent:{}\nabsent:{}\n",
        fp.version.value,
        fp.present.join(","),
        fp.absent.join(",")
    );
    crate::scripts::sha256_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fate(version: &str) -> Fingerprint {
        let profile = upgrade_shared::profile::builtin("fate").unwrap();
        profile
            .sql
            .unwrap()
            .fingerprints
            .into_iter()
            .find(|f| f.version.value == version)
            .unwrap()
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02X}")).collect()
    }

    fn schema(cols: &[(&str, &str)]) -> BTreeSet<String> {
        let lines: Vec<String> = cols
            .iter()
            .map(|(t, c)| format!("{}\t{}", hex(t), hex(c)))
            .collect();
        parse_columns(&lines)
    }

    const V172: &[(&str, &str)] = &[
        ("t_job", "f_job_id"),
        ("t_task", "f_task_id"),
        ("t_machine_learning_model_info", "f_model_id"),
        ("t_storage_table_meta", "f_name"),
    ];

    #[test]
    fn a_1_7_2_schema_matches_1_7_2_only() {
        let s = schema(V172);
        assert!(s.contains("t_job") && s.contains("t_job.f_job_id"));
        assert_eq!(mismatches(&fate("v1.7.2"), &s), Vec::<String>::new());
        let m = mismatches(&fate("v1.8.0"), &s);
        assert_eq!(
            m,
            [
                "t_storage_table_meta.f_origin is missing",
                "t_storage_table_meta.f_disable is missing"
            ]
        );
    }

    #[test]
    fn a_later_column_is_named() {
        let mut cols = V172.to_vec();
        cols.push(("t_task", "f_run_port"));
        let m = mismatches(&fate("v1.7.2"), &schema(&cols));
        assert_eq!(m, ["t_task.f_run_port exists (a later version adds it)"]);
    }

    #[test]
    fn digests_differ_per_version() {
        assert_ne!(digest(&fate("v1.7.2")), digest(&fate("v1.8.0")));
        assert_eq!(digest(&fate("v1.7.2")).len(), 64);
    }
}
