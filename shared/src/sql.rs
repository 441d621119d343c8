//! Schema migration scripts shipped with the suite (`sql/<app>/<from>-<to>.sql`) and the chain
//! that connects two versions: `1.7.2 → 1.8.0 → 1.9.0` runs `1.7.2-1.8.0.sql` then
//! `1.8.0-1.9.0.sql`.

use std::collections::{BTreeMap, VecDeque};

use crate::version::Version;

/// One script: the versions it connects and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub app: &'static str,
    pub file: &'static str,
    pub from: Version,
    pub to: Version,
    pub text: &'static str,
}

/// (app, file name, text) of every script under `sql/`.
pub const SCRIPTS: &[(&str, &str, &str)] = &[
    (
        "fate",
        "1.7.2-1.8.0.sql",
        include_str!("../../sql/fate/1.7.2-1.8.0.sql"),
    ),
    (
        "fate",
        "1.8.0-1.9.0.sql",
        include_str!("../../sql/fate/1.8.0-1.9.0.sql"),
    ),
];

/// The versions a script file connects: `1.7.2-1.8.0.sql` → (1.7.2, 1.8.0).
pub fn file_versions(file: &str) -> Option<(Version, Version)> {
    let (from, to) = file.strip_suffix(".sql")?.split_once('-')?;
    Some((Version::parse(from).ok()?, Version::parse(to).ok()?))
}

/// The scripts of an application, parsed from their file names.
pub fn scripts(app: &str) -> Vec<Script> {
    SCRIPTS
        .iter()
        .filter(|(a, _, _)| *a == app)
        .filter_map(|(a, file, text)| {
            let (from, to) = file_versions(file)?;
            Some(Script {
                app: a,
                file,
                from,
                to,
                text,
            })
        })
        .collect()
}

/// The shortest chain of scripts from `from` to `to` (empty when they are the same version).
/// `None` when no chain connects them; versions between scripts that no script starts or ends
/// at are not reachable.
pub fn chain(app: &str, from: &Version, to: &Version) -> Option<Vec<Script>> {
    let all = scripts(app);
    let path = shortest_path(&all, from, to, |s| (&s.from, &s.to))?;
    Some(path.into_iter().map(|i| all[i].clone()).collect())
}

/// The scripts a move from `from` to `to` crosses: every script lying inside that range, in
/// chain order. Releases after the last script change no schema, so `1.8.0 → 1.10.0` runs
/// `1.8.0-1.9.0.sql` alone, and `1.9.0 → 1.10.0` nothing. `None` when scripts lie inside the
/// range but no chain from `from` reaches them (a release the scripts do not start from).
pub fn chain_across(app: &str, from: &Version, to: &Version) -> Option<Vec<Script>> {
    let inside: Vec<Script> = scripts(app)
        .into_iter()
        .filter(|s| s.from.cmp_numbers(from).is_ge() && s.to.cmp_numbers(to).is_le())
        .collect();
    let Some(last) = inside
        .iter()
        .map(|s| &s.to)
        .max_by(|a, b| a.cmp_numbers(b))
        .cloned()
    else {
        return Some(Vec::new());
    };
    let path = shortest_path(&inside, from, &last, |s| (&s.from, &s.to))?;
    Some(path.into_iter().map(|i| inside[i].clone()).collect())
}

/// The shortest path (fewest edges, breadth-first) through any list of scripts, each an edge
/// given by `edge`: the indices of the scripts to run in order. Embedded scripts and a
/// directory of the user's own are chained the same way.
pub fn shortest_path<T>(
    scripts: &[T],
    from: &Version,
    to: &Version,
    edge: impl Fn(&T) -> (&Version, &Version),
) -> Option<Vec<usize>> {
    let key = |v: &Version| v.to_semver();
    if key(from) == key(to) {
        return Some(Vec::new());
    }
    let mut previous: BTreeMap<semver::Version, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([key(from)]);
    while let Some(at) = queue.pop_front() {
        for (i, s) in scripts.iter().enumerate() {
            let (start, end) = edge(s);
            let next = key(end);
            if key(start) == at && next != key(from) && !previous.contains_key(&next) {
                previous.insert(next.clone(), i);
                queue.push_back(next);
            }
        }
    }
    let mut path = Vec::new();
    let mut at = key(to);
    while at != key(from) {
        let i = *previous.get(&at)?;
        path.push(i);
        at = key(edge(&scripts[i]).0);
    }
    path.reverse();
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn chains_follow_the_versions() {
        let files: Vec<&str> = chain("fate", &v("v1.7.2"), &v("v1.9.0"))
            .unwrap()
            .iter()
            .map(|s| s.file)
            .collect();
        assert_eq!(files, ["1.7.2-1.8.0.sql", "1.8.0-1.9.0.sql"]);
        let files: Vec<&str> = chain("fate", &v("1.8.0-release"), &v("1.9.0"))
            .unwrap()
            .iter()
            .map(|s| s.file)
            .collect();
        assert_eq!(files, ["1.8.0-1.9.0.sql"]);
        assert_eq!(chain("fate", &v("1.8.0"), &v("1.8.0")), Some(vec![]));
        assert_eq!(chain("fate", &v("1.9.0"), &v("1.7.2")), None);
        assert_eq!(chain("fate", &v("1.6.0"), &v("1.9.0")), None);
        assert_eq!(chain("nope", &v("1.0.0"), &v("2.0.0")), None);
    }

    #[test]
    fn chains_across_targets_without_scripts_of_their_own() {
        let files = |from: &str, to: &str| -> Option<Vec<&str>> {
            chain_across("fate", &v(from), &v(to)).map(|c| c.iter().map(|s| s.file).collect())
        };
        assert_eq!(files("1.8.0", "1.10.0"), Some(vec!["1.8.0-1.9.0.sql"]));
        assert_eq!(files("1.8.0", "1.9.1"), Some(vec!["1.8.0-1.9.0.sql"]));
        assert_eq!(
            files("v1.7.2", "v1.10.0"),
            Some(vec!["1.7.2-1.8.0.sql", "1.8.0-1.9.0.sql"])
        );
        assert_eq!(files("1.9.0", "1.10.0"), Some(vec![]));
        assert_eq!(files("1.8.0", "1.8.0"), Some(vec![]));
        assert_eq!(files("1.6.0", "1.9.0"), None, "no script starts at 1.6.0");
    }

    #[test]
    fn every_file_under_sql_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql");
        for app in std::fs::read_dir(&dir).unwrap() {
            let app = app.unwrap();
            if !app.file_type().unwrap().is_dir() {
                continue;
            }
            for file in std::fs::read_dir(app.path()).unwrap() {
                let name = file.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".sql") {
                    let app_name = app.file_name().into_string().unwrap();
                    assert!(
                        SCRIPTS.iter().any(|(a, f, _)| *a == app_name && *f == name),
                        "sql/{app_name}/{name} is not listed in SCRIPTS"
                    );
                }
            }
        }
    }
}
