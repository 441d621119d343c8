//! What one rehearsal is made of, as written in `tests/rehearsals/<name>.yaml`: the scenario the
//! cluster starts from, the check to run, the data to record, and how each of the application's
//! own upgrade steps (which no kubectl can run here) is played. Nothing is guessed: a runbook
//! step that is neither a kubectl command nor declared here fails the rehearsal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// One rehearsal definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Definition {
    /// The file's stem (`fate`), filled in by [`load`].
    #[serde(skip)]
    pub name: String,
    /// One line saying what is rehearsed.
    pub title: String,
    /// The seed guide it follows (a file name under the seeds' folder), for the reader.
    pub seed: String,
    /// Scenario files the cluster starts from, in order (relative to `tests/scenarios`).
    pub scenarios: Vec<String>,
    /// The check's profile: a built-in name, or (with `profileFile`) the name inside that file.
    pub profile: String,
    /// A profile of the rehearsal's own (relative to `tests/rehearsals`), given to the check
    /// and to verify with `--profile-file` and copied into the working directory.
    #[serde(default)]
    pub profile_file: Option<String>,
    /// The namespace the check is run in.
    pub namespace: String,
    /// The version the check is asked about.
    pub to: String,
    /// The verdict the check must give.
    pub verdict: String,
    /// Target manifests handed to the check with `-f` (copied into the working directory under
    /// their file names; relative to `tests/scenarios`).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Files the user has in the working directory when following the runbook (name there →
    /// scenario file or directory), e.g. `rok-tools-eks.yaml` or a kustomize tree.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// kubectl commands (argument lists) that write the application's data once the cluster
    /// runs, before anything is recorded: what the application itself would have written, and
    /// the faults the rehearsal declares to the simulated cluster (an operator stand-in's
    /// annotation).
    #[serde(default)]
    pub prepare: Vec<Vec<String>>,
    /// The data whose survival is proven.
    pub data: Data,
    /// How the application's own upgrade steps are played.
    #[serde(default)]
    pub plays: Vec<Play>,
    /// Where the kill-and-re-run variant kills a plugin.
    pub kill: Kill,
}

/// Data recorded before the runbook and compared after it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// Databases, read table by table.
    #[serde(default)]
    pub mysql: Vec<MysqlData>,
    /// Directory trees, read file by file.
    #[serde(default)]
    pub files: Vec<FileData>,
}

/// A MySQL/MariaDB database in a pod, read through `kubectl exec` with the `mysql` client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MysqlData {
    /// Namespace of the pod.
    pub namespace: String,
    /// Label selector finding the database pod (before and after the upgrade).
    pub selector: String,
    /// Container running the server.
    pub container: String,
    /// Database to read.
    pub database: String,
    /// Tables the upgrade regenerates instead of carrying (name → why); their rows are not
    /// compared, only that they exist afterwards.
    #[serde(default)]
    pub regenerated: BTreeMap<String, String>,
}

/// A directory in a pod's container, read through `kubectl exec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileData {
    /// Namespace of the pod.
    pub namespace: String,
    /// Label selector finding the pod (before and after the upgrade).
    pub selector: String,
    /// Container that mounts the data.
    pub container: String,
    /// The directory.
    pub path: String,
    /// Where the same data is found after the upgrade, when the new version names its pod or
    /// container differently (a StatefulSet's pods share one template).
    #[serde(default)]
    pub after: Option<FileDataAfter>,
}

/// The pod and container of a tree after the upgrade.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDataAfter {
    /// Label selector finding the pod.
    pub selector: String,
    /// Container that mounts the data.
    pub container: String,
}

/// How one of the application's own steps is played on the simulated cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Play {
    /// The runbook command this plays: every step whose words start with these words.
    pub step: String,
    /// What the real tool does, for the reader and the output.
    pub does: String,
    /// Objects deleted first (`kind/name`, in the rehearsal's namespace unless `ns/kind/name`),
    /// in the foreground, waiting until they and their pods are gone.
    #[serde(default)]
    pub delete: Vec<String>,
    /// Scenario files applied with `kubectl apply -f` (relative to `tests/scenarios`).
    #[serde(default)]
    pub apply: Vec<String>,
    /// Workloads whose rollout is awaited afterwards (`kind/name` or `ns/kind/name`), as the
    /// real tool waits for its release to be running.
    #[serde(default)]
    pub rollout: Vec<String>,
    /// Schema scripts the tool runs once the release runs (KubeFATE's upgrade Job), fed to the
    /// `mysql` client in the database pod, in order, stopping at the first failure.
    #[serde(default)]
    pub schema: Option<SchemaPlay>,
}

/// Schema scripts a play runs against a database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaPlay {
    /// Label selector finding the database pod in the rehearsal's namespace.
    pub selector: String,
    /// Container running the server.
    pub container: String,
    /// Database the scripts run in.
    pub database: String,
    /// Scripts, relative to the repository's root (`sql/fate/1.8.0-1.9.0.sql`).
    pub scripts: Vec<String>,
}

/// The kill of the kill-and-re-run variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kill {
    /// The first runbook step whose command starts with these words is killed.
    pub step: String,
    /// Killed once the plugin has sent this many changing requests (create, update, patch,
    /// delete, exec) to the API server (default 1).
    #[serde(default = "one")]
    pub after_writes: usize,
}

fn one() -> usize {
    1
}

/// The repository's root (this crate's parent directory).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `tests/scenarios`.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// `tests/rehearsals`.
pub fn rehearsals_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rehearsals")
}

/// The names of the shipped rehearsals, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rehearsals_dir())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension()? == "yaml").then(|| p.file_stem()?.to_str().map(String::from))?
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Loads `tests/rehearsals/<name>.yaml`; errors name the file and line.
pub fn load(name: &str) -> anyhow::Result<Definition> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        || name.starts_with('.')
    {
        bail!(
            "rehearsal name {name:?} is not valid (letters, digits, dots and dashes; known: {})",
            names().join(", ")
        );
    }
    let path = rehearsals_dir().join(format!("{name}.yaml"));
    if !path.exists() {
        bail!("no rehearsal {name:?} (known: {})", names().join(", "));
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut def = parse(&path.display().to_string(), &text)?;
    def.name = name.to_string();
    def.check_files()?;
    Ok(def)
}

/// Parses a definition; `origin` names it in errors (`origin:LINE: message`).
pub fn parse(origin: &str, text: &str) -> anyhow::Result<Definition> {
    let def: Definition = serde_saphyr::from_str(text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        let msg = e.without_snippet().to_string();
        let first = msg
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("invalid YAML");
        anyhow::anyhow!("{origin}:{line}: {first}")
    })?;
    for play in &def.plays {
        match play.step.split_whitespace().next() {
            None => bail!("{origin}: a play has an empty step"),
            // kubectl steps always run for real; a play may only stand in for the
            // application's own tools.
            Some("kubectl") => bail!(
                "{origin}: play {:?} names a kubectl command; kubectl steps run for real",
                play.step
            ),
            Some(_) => {}
        }
    }
    if def.kill.step.split_whitespace().next() != Some("kubectl")
        || !def
            .kill
            .step
            .split_whitespace()
            .nth(1)
            .is_some_and(|w| w.starts_with("upgrade-"))
    {
        bail!(
            "{origin}: kill.step must name a plugin step (`kubectl upgrade-…`), not {:?}",
            def.kill.step
        );
    }
    if def.kill.after_writes == 0 {
        bail!("{origin}: kill.afterWrites must be at least 1");
    }
    Ok(def)
}

impl Definition {
    /// Every file the definition names exists.
    fn check_files(&self) -> anyhow::Result<()> {
        let dir = scenarios_dir();
        let named = self
            .scenarios
            .iter()
            .chain(&self.targets)
            .chain(self.files.values())
            .chain(self.plays.iter().flat_map(|p| &p.apply));
        if let Some(file) = &self.profile_file
            && (file.split('/').any(|p| p == "..") || !rehearsals_dir().join(file).is_file())
        {
            bail!(
                "rehearsal {}: profile file {file} does not exist in tests/rehearsals",
                self.name
            );
        }
        for script in self
            .plays
            .iter()
            .filter_map(|p| p.schema.as_ref())
            .flat_map(|s| &s.scripts)
        {
            if script.split('/').any(|p| p == "..") || !workspace().join(script).is_file() {
                bail!(
                    "rehearsal {}: schema script {script} does not exist",
                    self.name
                );
            }
        }
        for file in named {
            if file.split('/').any(|p| p == "..") || file.starts_with('/') {
                bail!(
                    "rehearsal {}: {file} must stay inside tests/scenarios",
                    self.name
                );
            }
            if !dir.join(file).exists() {
                bail!(
                    "rehearsal {}: tests/scenarios/{file} does not exist",
                    self.name
                );
            }
        }
        Ok(())
    }

    /// The play declared for a runbook command, if any (the longest matching `step`).
    pub fn play_for(&self, words: &[String]) -> Option<&Play> {
        self.plays
            .iter()
            .filter(|p| starts_with_words(words, &p.step))
            .max_by_key(|p| p.step.split_whitespace().count())
    }
}

/// Whether a command's words start with the words of `prefix`.
pub fn starts_with_words(words: &[String], prefix: &str) -> bool {
    let want: Vec<&str> = prefix.split_whitespace().collect();
    !want.is_empty() && words.len() >= want.len() && words.iter().zip(&want).all(|(w, p)| w == p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "title: t\nseed: s.md\nscenarios: [a.yaml]\nprofile: p\nnamespace: n\nto: '1'\nverdict: safe\ndata: {}\nkill: {step: kubectl upgrade-x y}\n";

    #[test]
    fn a_minimal_definition_parses_with_defaults() {
        let d = parse("t.yaml", MINIMAL).expect("parses");
        assert_eq!(d.kill.after_writes, 1);
        assert!(d.plays.is_empty() && d.targets.is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_with_file_and_line() {
        let err = parse("t.yaml", &format!("{MINIMAL}extra: 1\n")).expect_err("refused");
        assert!(err.to_string().starts_with("t.yaml:"), "{err}");
    }

    #[test]
    fn the_kill_must_be_a_plugin_step() {
        let text = MINIMAL.replace("kubectl upgrade-x y", "kubectl scale deploy/x");
        let err = parse("t.yaml", &text).expect_err("refused");
        assert!(err.to_string().contains("kill.step"), "{err}");
    }

    #[test]
    fn plays_match_by_whole_words_and_the_longest_wins() {
        let text = format!(
            "{MINIMAL}plays:\n- {{step: juju deploy, does: a}}\n- {{step: juju deploy minio, does: b}}\n"
        );
        let d = parse("t.yaml", &text).expect("parses");
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            d.play_for(&words("juju deploy minio --channel 1.7/stable"))
                .map(|p| p.does.as_str()),
            Some("b")
        );
        assert_eq!(
            d.play_for(&words("juju deploy mlflow"))
                .map(|p| p.does.as_str()),
            Some("a")
        );
        assert!(d.play_for(&words("juju deployx")).is_none());
        assert!(d.play_for(&words("juju")).is_none());
    }

    #[test]
    fn every_shipped_definition_loads() {
        let names = names();
        assert!(!names.is_empty());
        for name in names {
            load(&name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
