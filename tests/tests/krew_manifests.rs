//! Checks the krew plugin manifests under `krew/` and the script that fills them in
//! (`scripts/package-krew`).
//!
//! Every `krew/*.yaml` is parsed and held to the rules below; every plugin crate under
//! `plugins/` must have a manifest and every manifest a crate. The negative tests feed
//! broken manifests to the same validator and check that the matching rule reports them.
//!
//! Rules enforced by krew itself. Sources are files of the kubernetes-sigs/krew
//! repository: `internal/index/validation/validate.go` (`ValidatePlugin`,
//! `validatePlatform`, `validateFiles`, `validateSelector`; older releases keep the same
//! code in `pkg/index/validation/validate.go`), `pkg/constants/constants.go`,
//! `internal/installation/semver/version.go`, `cmd/validate-krew-manifest/main.go`
//! (the checker the krew-index repository runs on submissions), and the developer guide
//! pages `site/content/docs/developer-guide/plugin-manifest.md` ("Writing Krew plugin
//! manifests") and `.../release/submitting-to-krew.md`.
//!
//! - `api-version`: `apiVersion` is exactly `krew.googlecontainertools.github.com/v1alpha2`
//!   (the only value constants.go accepts) and `kind` is exactly `Plugin` (`kind`).
//! - `name-matches-file`: `metadata.name` equals the manifest's file name without `.yaml`;
//!   the file name is how krew finds a plugin, and the docs require the two to agree.
//!   Manifests must use the `.yaml` extension (`manifest-extension`).
//! - `name-safe`: the name is made only of ASCII letters, digits, `_` and `-` (krew's
//!   `^[\w-]+$`) and is not a reserved Windows device name (CON, PRN, AUX, NUL, COM1-9,
//!   LPT1-9, compared without case).
//! - `version`: `spec.version` is a semantic version with a leading `v`; krew's semver
//!   wrapper rejects a version without the `v` before parsing the rest.
//! - `short-description`: `spec.shortDescription` is set and has no line break (`\r` or
//!   `\n`): `kubectl krew search` prints it on one row.
//! - `description`: `spec.description` is set; the manifest guide lists it as required.
//! - `platforms`: `spec.platforms` is a non-empty list. Each platform has a `uri`
//!   (`uri`), a `sha256` matching `^[a-f0-9]{64}$` (`sha256`; lowercase only, although
//!   one example in the guide shows uppercase hex) and a `bin` (`bin`).
//! - `files`: may be left out (krew then extracts everything); if given it is a non-empty
//!   list whose entries all have non-empty `from` and `to`.
//! - `selector`: every platform has a selector with `matchLabels` and/or
//!   `matchExpressions`; neither may be present but empty; the only label keys are `os`
//!   and `arch` (`selector-keys`). Expressions follow Kubernetes label selectors:
//!   operator `In`/`NotIn` with values, or `Exists`/`DoesNotExist` without
//!   (`selector-expression`).
//! - `platform-supported`: each platform selects at least one os/arch pair krew runs on
//!   (the list in validate-krew-manifest: windows 386/amd64/arm64, linux
//!   386/amd64/arm/arm64/ppc64le, darwin 386/amd64/arm64), and `platform-overlap`: no
//!   pair is selected by two platforms.
//! - `uri`: the archive is a `.zip` or `.tar.gz` (the manifest guide's package formats).
//!
//! Rules this project adds on top (stricter than krew):
//! - `name-kebab-case`: lowercase words of letters and digits joined by single hyphens,
//!   as the plugin naming guide (`.../develop/naming-guide.md`) asks; krew's own check
//!   would also let `_` and capitals through.
//! - `short-description`: at most 50 characters. The guide only asks for "a few words"
//!   so the tagline fits the `kubectl krew search` table.
//! - `uri`: https only.
//! - `homepage`: set, https.
//! - `bin`: exactly `kubectl-<name>` (`kubectl-<name>.exe` for Windows platforms), the
//!   file name cargo gives the plugin's binary.
//! - `files`: required, with an entry for the binary and one for `LICENSE`; the
//!   submission checklist asks that the license be extracted on install, and
//!   validate-krew-manifest fails a plugin whose install leaves no license file.
//! - `project-uri`: a platform selected by `matchLabels` os+arch downloads
//!   `.../releases/download/<spec.version>/kubectl-<name>-<os>-<arch>.tar.gz`, the archive
//!   `scripts/package-krew` builds.
//! - `unknown-field`: no fields beyond those of krew's manifest types
//!   (`pkg/index/types.go`). krew ignores unknown fields, so a misspelt key such as
//!   `sha265` would otherwise pass unnoticed.
//! - `plugin-crate`: every `plugins/*` crate named `kubectl-upgrade-X` has
//!   `krew/upgrade-X.yaml`, and every manifest has its crate.
//!
//! `package_script_end_to_end` builds the release binary and is ignored by default; run
//! it with `KREW_PACKAGE_TEST=1 cargo test -p upgrade-e2e --test krew_manifests --
//! --ignored`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value};

const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";
const KIND: &str = "Plugin";
const SHORT_DESCRIPTION_MAX_CHARS: usize = 50;
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];
/// The os/arch pairs krew runs on (`cmd/validate-krew-manifest/main.go`, `allPlatforms`).
const SUPPORTED_PLATFORMS: &[(&str, &str)] = &[
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];
const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const SPEC_FIELDS: &[&str] = &[
    "version",
    "shortDescription",
    "description",
    "caveats",
    "homepage",
    "platforms",
];
const PLATFORM_FIELDS: &[&str] = &["uri", "sha256", "selector", "files", "license", "bin"];
const FILE_FIELDS: &[&str] = &["from", "to"];
const SELECTOR_FIELDS: &[&str] = &["matchLabels", "matchExpressions"];
const EXPRESSION_FIELDS: &[&str] = &["key", "operator", "values"];

/// One broken rule: the rule's id (see the list at the top) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    rule: &'static str,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

#[derive(Default)]
struct Report(Vec<Violation>);

impl Report {
    fn add(&mut self, rule: &'static str, message: impl Into<String>) {
        self.0.push(Violation {
            rule,
            message: message.into(),
        });
    }
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn check_fields(report: &mut Report, at: &str, object: &Map<String, Value>, known: &[&str]) {
    for key in object.keys() {
        if !known.contains(&key.as_str()) {
            report.add(
                "unknown-field",
                format!("{at}: unknown field `{key}` (known: {})", known.join(", ")),
            );
        }
    }
}

/// krew's `IsSafePluginName`: `^[\w-]+$` and not a Windows device name.
fn is_safe_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !WINDOWS_RESERVED
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

/// Lowercase words of letters and digits joined by single hyphens.
fn is_kebab_case(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// Whether a (structurally valid) selector selects the given os/arch, with Kubernetes
/// label-selector semantics over the two labels krew sets.
fn selector_matches(selector: &Value, os: &str, arch: &str) -> bool {
    let label = |key: &str| match key {
        "os" => Some(os),
        "arch" => Some(arch),
        _ => None,
    };
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object)
        && labels
            .iter()
            .any(|(key, value)| label(key) != value.as_str())
    {
        return false;
    }
    if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
        for expression in expressions {
            let value = label(str_at(expression, &["key"]).unwrap_or_default());
            let values: Vec<&str> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|values| values.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let in_values = value.is_some_and(|v| values.contains(&v));
            let matched = match str_at(expression, &["operator"]) {
                Some("In") => in_values,
                Some("NotIn") => !in_values,
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                _ => false,
            };
            if !matched {
                return false;
            }
        }
    }
    true
}

/// Checks a selector's structure; true when it is sound enough to match against.
fn check_selector(report: &mut Report, at: &str, selector: Option<&Value>) -> bool {
    let Some(selector) = selector else {
        report.add("selector", format!("{at}: `selector` is missing"));
        return false;
    };
    let Some(object) = selector.as_object() else {
        report.add("selector", format!("{at}: `selector` is not a mapping"));
        return false;
    };
    check_fields(report, &format!("{at}.selector"), object, SELECTOR_FIELDS);
    let before = report.0.len();
    let labels = object.get("matchLabels");
    let expressions = object.get("matchExpressions");
    if labels.is_none() && expressions.is_none() {
        report.add(
            "selector",
            format!("{at}: selector has neither `matchLabels` nor `matchExpressions`"),
        );
    }
    if let Some(labels) = labels {
        match labels.as_object() {
            None => report.add("selector", format!("{at}: `matchLabels` is not a mapping")),
            Some(labels) if labels.is_empty() => {
                report.add("selector", format!("{at}: `matchLabels` is empty"));
            }
            Some(labels) => {
                for (key, value) in labels {
                    if key != "os" && key != "arch" {
                        report.add(
                            "selector-keys",
                            format!("{at}: label `{key}` is not supported (only os, arch)"),
                        );
                    }
                    if value.as_str().is_none_or(str::is_empty) {
                        report.add(
                            "selector",
                            format!("{at}: label `{key}` needs a string value"),
                        );
                    }
                }
            }
        }
    }
    if let Some(expressions) = expressions {
        match expressions.as_array() {
            None => report.add(
                "selector",
                format!("{at}: `matchExpressions` is not a list"),
            ),
            Some(list) if list.is_empty() => {
                report.add("selector", format!("{at}: `matchExpressions` is empty"));
            }
            Some(list) => {
                for (j, expression) in list.iter().enumerate() {
                    let at = format!("{at}.matchExpressions[{j}]");
                    if let Some(object) = expression.as_object() {
                        check_fields(report, &at, object, EXPRESSION_FIELDS);
                    }
                    let key = str_at(expression, &["key"]).unwrap_or_default();
                    if key != "os" && key != "arch" {
                        report.add(
                            "selector-keys",
                            format!("{at}: key `{key}` is not supported (only os, arch)"),
                        );
                    }
                    let values = expression.get("values").and_then(Value::as_array);
                    let has_values = values.is_some_and(|v| !v.is_empty());
                    let strings = values.is_none_or(|v| v.iter().all(Value::is_string));
                    match str_at(expression, &["operator"]) {
                        Some("In" | "NotIn") if !has_values || !strings => report.add(
                            "selector-expression",
                            format!("{at}: In/NotIn needs a non-empty list of string values"),
                        ),
                        Some("Exists" | "DoesNotExist") if has_values => report.add(
                            "selector-expression",
                            format!("{at}: Exists/DoesNotExist takes no values"),
                        ),
                        Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
                        other => report.add(
                            "selector-expression",
                            format!(
                                "{at}: operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                            ),
                        ),
                    }
                }
            }
        }
    }
    report.0.len() == before
}

/// Validates one manifest, given the file name without `.yaml` and the file's text.
/// Returns every broken rule; an empty list means the manifest is valid.
fn validate_manifest(file_stem: &str, text: &str) -> Vec<Violation> {
    let mut report = Report::default();
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(err) => {
            report.add("yaml", format!("not valid YAML: {err}"));
            return report.0;
        }
    };
    let Some(top) = doc.as_object() else {
        report.add("yaml", "the document is not a mapping");
        return report.0;
    };
    check_fields(&mut report, "manifest", top, TOP_FIELDS);

    let api_version = str_at(&doc, &["apiVersion"]);
    if api_version != Some(API_VERSION) {
        report.add(
            "api-version",
            format!("apiVersion is {api_version:?}, must be {API_VERSION:?}"),
        );
    }
    let kind = str_at(&doc, &["kind"]);
    if kind != Some(KIND) {
        report.add("kind", format!("kind is {kind:?}, must be {KIND:?}"));
    }

    // Name.
    if !is_safe_plugin_name(file_stem) {
        report.add(
            "name-safe",
            format!(
                "plugin name {file_stem:?} must match ^[\\w-]+$ and not be a Windows device name"
            ),
        );
    }
    if !is_kebab_case(file_stem) {
        report.add(
            "name-kebab-case",
            format!("plugin name {file_stem:?} must be lowercase words joined by single hyphens"),
        );
    }
    let name = str_at(&doc, &["metadata", "name"]);
    if name != Some(file_stem) {
        report.add(
            "name-matches-file",
            format!("metadata.name is {name:?} but the file is {file_stem}.yaml"),
        );
    }
    let name = file_stem;

    let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
        report.add("platforms", "`spec` is missing or not a mapping");
        return report.0;
    };
    check_fields(&mut report, "spec", spec, SPEC_FIELDS);
    let spec_str = |key: &str| spec.get(key).and_then(Value::as_str);

    // Version.
    let version = spec_str("version");
    match version {
        None => report.add("version", "spec.version is missing"),
        Some(v) => match v.strip_prefix('v') {
            None => report.add("version", format!("spec.version {v:?} must start with 'v'")),
            Some(rest) => {
                if let Err(err) = semver::Version::parse(rest) {
                    report.add(
                        "version",
                        format!("spec.version {v:?} is not a semantic version: {err}"),
                    );
                }
            }
        },
    }

    // Documentation fields.
    match spec_str("shortDescription") {
        None | Some("") => report.add("short-description", "spec.shortDescription is missing"),
        Some(short) => {
            if short.contains(['\r', '\n']) {
                report.add(
                    "short-description",
                    format!("spec.shortDescription {short:?} has a line break"),
                );
            }
            let chars = short.chars().count();
            if chars > SHORT_DESCRIPTION_MAX_CHARS {
                report.add(
                    "short-description",
                    format!(
                        "spec.shortDescription has {chars} characters, at most {SHORT_DESCRIPTION_MAX_CHARS} allowed"
                    ),
                );
            }
        }
    }
    if spec_str("description").is_none_or(|d| d.trim().is_empty()) {
        report.add("description", "spec.description is missing");
    }
    if !spec_str("homepage").is_some_and(|h| h.starts_with("https://")) {
        report.add("homepage", "spec.homepage must be an https:// URL");
    }

    // Platforms.
    let platforms = match spec.get("platforms").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list,
        _ => {
            report.add("platforms", "spec.platforms must be a non-empty list");
            return report.0;
        }
    };
    let mut selections: Vec<Vec<(&str, &str)>> = Vec::new();
    for (i, platform) in platforms.iter().enumerate() {
        let at = format!("spec.platforms[{i}]");
        let Some(object) = platform.as_object() else {
            report.add("platforms", format!("{at} is not a mapping"));
            continue;
        };
        check_fields(&mut report, &at, object, PLATFORM_FIELDS);
        let field = |key: &str| object.get(key).and_then(Value::as_str);

        let uri = field("uri").unwrap_or_default();
        if uri.is_empty() {
            report.add("uri", format!("{at}: `uri` is missing"));
        } else {
            if !uri.starts_with("https://") {
                report.add("uri", format!("{at}: uri {uri:?} is not https"));
            }
            if !(uri.ends_with(".tar.gz") || uri.ends_with(".zip")) {
                report.add("uri", format!("{at}: uri {uri:?} is not a .tar.gz or .zip"));
            }
        }

        match field("sha256") {
            None if object.contains_key("sha256") => report.add(
                "sha256",
                format!("{at}: sha256 is not a string; quote it (all-digit hex reads as a number)"),
            ),
            None => report.add("sha256", format!("{at}: `sha256` is missing")),
            Some(sha) if !is_sha256_hex(sha) => report.add(
                "sha256",
                format!("{at}: sha256 {sha:?} is not 64 lowercase hex digits"),
            ),
            Some(_) => {}
        }

        let selector_ok = check_selector(&mut report, &at, object.get("selector"));
        let selected: Vec<(&str, &str)> = match object.get("selector") {
            Some(selector) if selector_ok => SUPPORTED_PLATFORMS
                .iter()
                .copied()
                .filter(|(os, arch)| selector_matches(selector, os, arch))
                .collect(),
            _ => Vec::new(),
        };
        if selector_ok && selected.is_empty() {
            report.add(
                "platform-supported",
                format!("{at}: the selector matches no os/arch krew supports"),
            );
        }

        // bin: kubectl-<name>, with .exe when the platform is Windows only.
        let windows = selected.iter().filter(|(os, _)| *os == "windows").count();
        let expected_bin = if windows > 0 && windows == selected.len() {
            format!("kubectl-{name}.exe")
        } else {
            format!("kubectl-{name}")
        };
        match field("bin") {
            None | Some("") => report.add("bin", format!("{at}: `bin` is missing")),
            Some(bin) if bin != expected_bin => report.add(
                "bin",
                format!("{at}: bin is {bin:?}, must be {expected_bin:?}"),
            ),
            Some(_) => {}
        }
        if windows > 0 && windows != selected.len() {
            report.add(
                "bin",
                format!(
                    "{at}: one platform entry cannot serve Windows and other systems with one bin"
                ),
            );
        }

        // files.
        match object.get("files") {
            None => report.add(
                "files",
                format!("{at}: `files` is missing (this project lists the binary and LICENSE)"),
            ),
            Some(files) => match files.as_array() {
                Some(list) if !list.is_empty() => {
                    let mut froms = BTreeSet::new();
                    for (j, entry) in list.iter().enumerate() {
                        if let Some(object) = entry.as_object() {
                            check_fields(
                                &mut report,
                                &format!("{at}.files[{j}]"),
                                object,
                                FILE_FIELDS,
                            );
                        }
                        for key in ["from", "to"] {
                            if str_at(entry, &[key]).is_none_or(str::is_empty) {
                                report.add("files", format!("{at}.files[{j}]: `{key}` is missing"));
                            }
                        }
                        if let Some(from) = str_at(entry, &["from"]) {
                            froms.insert(from.trim_start_matches("./"));
                        }
                    }
                    if !froms.contains("LICENSE") {
                        report.add("files", format!("{at}: `files` does not install LICENSE"));
                    }
                    if let Some(bin) = field("bin")
                        && !froms.contains(bin.trim_start_matches("./"))
                    {
                        report.add(
                            "files",
                            format!("{at}: `files` does not install the binary {bin:?}"),
                        );
                    }
                }
                _ => report.add("files", format!("{at}: `files` must be a non-empty list")),
            },
        }

        // The archive the packaging script builds for this os/arch.
        let labels = object
            .get("selector")
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object);
        if let (Some(labels), Some(version)) = (labels, version)
            && let (Some(os), Some(arch)) = (
                labels.get("os").and_then(Value::as_str),
                labels.get("arch").and_then(Value::as_str),
            )
        {
            let suffix = format!("/releases/download/{version}/kubectl-{name}-{os}-{arch}.tar.gz");
            if !uri.ends_with(&suffix) {
                report.add(
                    "project-uri",
                    format!("{at}: uri {uri:?} must end with {suffix:?}"),
                );
            }
        }
        selections.push(selected);
    }

    for (os, arch) in SUPPORTED_PLATFORMS {
        let users: Vec<usize> = selections
            .iter()
            .enumerate()
            .filter(|(_, selected)| selected.contains(&(*os, *arch)))
            .map(|(i, _)| i)
            .collect();
        if users.len() > 1 {
            report.add(
                "platform-overlap",
                format!("{os}/{arch} is selected by several platforms: {users:?}"),
            );
        }
    }
    report.0
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// The `.yaml` files of `krew/`, by file stem.
fn manifest_files(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = root.join("krew");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .context("manifest file name is not UTF-8")?
                .to_owned();
            out.push((stem, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Package name of a Cargo.toml, read from its `[package]` table.
fn package_name(cargo_toml: &Path) -> Result<String> {
    let text = fs::read_to_string(cargo_toml)
        .with_context(|| format!("reading {}", cargo_toml.display()))?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            return Ok(value.trim().trim_matches('"').to_owned());
        }
    }
    bail!("{} has no [package] name", cargo_toml.display())
}

/// Plugin names (`X` of `kubectl-upgrade-X`) of the crates under `plugins/`.
fn plugin_crates(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root.join("plugins"))? {
        let cargo_toml = entry?.path().join("Cargo.toml");
        if !cargo_toml.is_file() {
            continue;
        }
        let name = package_name(&cargo_toml)?;
        let plugin = name.strip_prefix("kubectl-upgrade-").with_context(|| {
            format!(
                "{}: package {name:?} is not named kubectl-upgrade-<name>",
                cargo_toml.display()
            )
        })?;
        out.push((plugin.to_owned(), cargo_toml));
    }
    out.sort();
    Ok(out)
}

#[test]
fn every_manifest_follows_krew_rules() -> Result<()> {
    let root = workspace_root();
    let manifests = manifest_files(&root)?;
    ensure!(!manifests.is_empty(), "no manifests under krew/");
    let mut failures = Vec::new();
    for (stem, path) in &manifests {
        let text = fs::read_to_string(path)?;
        for violation in validate_manifest(stem, &text) {
            failures.push(format!("{}: {violation}", path.display()));
        }
        for line in text.lines() {
            let value = line
                .trim()
                .strip_prefix("sha256:")
                .map(|v| v.trim().trim_matches('"'));
            if value.is_some_and(|v| !v.is_empty() && v.chars().all(|c| c == '0')) {
                eprintln!(
                    "note: {} still has a placeholder sha256; the release job fills it",
                    path.display()
                );
                break;
            }
        }
    }
    ensure!(failures.is_empty(), "\n{}", failures.join("\n"));
    Ok(())
}

#[test]
fn krew_directory_holds_only_yaml_manifests_and_readme() -> Result<()> {
    let root = workspace_root();
    let mut stray = Vec::new();
    for entry in fs::read_dir(root.join("krew"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name != "README.md" && !name.ends_with(".yaml") {
            stray.push(name.to_owned());
        }
    }
    ensure!(
        stray.is_empty(),
        "[manifest-extension] krew reads only `.yaml` manifests; unexpected files in krew/: {stray:?}"
    );
    Ok(())
}

#[test]
fn every_plugin_crate_has_a_manifest_and_back() -> Result<()> {
    let root = workspace_root();
    let crates = plugin_crates(&root)?;
    ensure!(!crates.is_empty(), "no plugin crates under plugins/");
    let manifests: BTreeSet<String> = manifest_files(&root)?
        .into_iter()
        .map(|(stem, _)| stem)
        .collect();
    let mut missing = Vec::new();
    for (plugin, cargo_toml) in &crates {
        let expected = format!("upgrade-{plugin}");
        if !manifests.contains(&expected) {
            missing.push(format!(
                "[plugin-crate] {} has no krew/{expected}.yaml",
                cargo_toml.display()
            ));
        }
    }
    let crate_names: BTreeSet<String> = crates
        .iter()
        .map(|(plugin, _)| format!("upgrade-{plugin}"))
        .collect();
    for stem in &manifests {
        if !crate_names.contains(stem) {
            missing.push(format!(
                "[plugin-crate] krew/{stem}.yaml has no plugin crate named kubectl-{stem}"
            ));
        }
    }
    ensure!(missing.is_empty(), "\n{}", missing.join("\n"));
    Ok(())
}

// ---------------------------------------------------------------------------
// The validator must be able to fail: broken manifests, one rule each.

const SHA: &str = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";

fn good_manifest() -> String {
    format!(
        r#"apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: upgrade-check
spec:
  version: v0.1.0
  homepage: https://github.com/kubectl-upgrade/kubectl-upgrade
  shortDescription: Check an app upgrade for data loss before it runs
  description: |
    Tells whether an upgrade keeps all data.
  caveats: |
    Needs read access to the cluster.
  platforms:
    - selector:
        matchLabels:
          os: linux
          arch: amd64
      uri: https://github.com/kubectl-upgrade/kubectl-upgrade/releases/download/v0.1.0/kubectl-upgrade-check-linux-amd64.tar.gz
      sha256: "{SHA}"
      bin: kubectl-upgrade-check
      files:
        - from: kubectl-upgrade-check
          to: .
        - from: LICENSE
          to: .
    - selector:
        matchLabels:
          os: darwin
          arch: arm64
      uri: https://github.com/kubectl-upgrade/kubectl-upgrade/releases/download/v0.1.0/kubectl-upgrade-check-darwin-arm64.tar.gz
      sha256: "{SHA}"
      bin: kubectl-upgrade-check
      files:
        - from: kubectl-upgrade-check
          to: .
        - from: LICENSE
          to: .
"#
    )
}

/// The good manifest with `from` replaced by `to` (the first occurrence, or all of them
/// when `all`); fails when `from` does not occur, so no case tests an unchanged manifest.
fn broken(from: &str, to: &str, all: bool) -> String {
    let good = good_manifest();
    assert!(
        good.contains(from),
        "{from:?} does not occur in the good manifest"
    );
    if all {
        good.replace(from, to)
    } else {
        good.replacen(from, to, 1)
    }
}

#[track_caller]
fn assert_fires(stem: &str, text: &str, rule: &str) {
    let violations = validate_manifest(stem, text);
    assert!(
        violations.iter().any(|v| v.rule == rule),
        "expected rule `{rule}` to fire, got: {violations:#?}\n--- manifest ---\n{text}"
    );
}

#[test]
fn good_manifest_passes() {
    let violations = validate_manifest("upgrade-check", &good_manifest());
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn broken_manifests_are_rejected() {
    let stem = "upgrade-check";
    let platforms_start = "  platforms:\n";
    let cases: Vec<(&str, String)> = vec![
        ("yaml", "apiVersion: [unclosed\n".to_owned()),
        (
            "api-version",
            broken("github.com/v1alpha2", "github.com/v1alpha1", false),
        ),
        (
            "api-version",
            broken(
                "krew.googlecontainertools.github.com/",
                "krew.example.com/",
                false,
            ),
        ),
        ("kind", broken("kind: Plugin", "kind: Plugins", false)),
        (
            "name-matches-file",
            broken("name: upgrade-check", "name: upgrade-chek", false),
        ),
        (
            "version",
            broken("version: v0.1.0", "version: 0.1.0", false),
        ),
        ("version", broken("version: v0.1.0", "version: v0.1", false)),
        (
            "version",
            broken("version: v0.1.0", "version: v0.1.0.4", false),
        ),
        ("version", broken("  version: v0.1.0\n", "", false)),
        (
            "short-description",
            broken(
                "  shortDescription: Check an app upgrade for data loss before it runs\n",
                "",
                false,
            ),
        ),
        (
            "short-description",
            broken(
                "shortDescription: Check an app upgrade for data loss before it runs",
                "shortDescription: \"Check an app upgrade\\nfor data loss\"",
                false,
            ),
        ),
        (
            "short-description",
            broken(
                "before it runs",
                "before it runs, and then some more words",
                false,
            ),
        ),
        (
            "description",
            broken(
                "  description: |\n    Tells whether an upgrade keeps all data.\n",
                "",
                false,
            ),
        ),
        (
            "homepage",
            broken("homepage: https://", "homepage: http://", false),
        ),
        (
            "platforms",
            good_manifest()
                .split(platforms_start)
                .next()
                .unwrap_or_default()
                .to_owned()
                + "  platforms: []\n",
        ),
        (
            "platforms",
            good_manifest()
                .split(platforms_start)
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        ("uri", broken("uri: https://", "uri: http://", false)),
        (
            "uri",
            broken("linux-amd64.tar.gz", "linux-amd64.tar.xz", false),
        ),
        (
            "uri",
            broken(
                "      uri: https://github.com/kubectl-upgrade/kubectl-upgrade/releases/download/v0.1.0/kubectl-upgrade-check-linux-amd64.tar.gz\n",
                "",
                false,
            ),
        ),
        ("sha256", broken(SHA, &SHA.to_uppercase(), false)),
        ("sha256", broken(SHA, &SHA[..63], false)),
        (
            "sha256",
            broken(&format!("\"{SHA}\""), &"1".repeat(64), false),
        ),
        ("sha256", broken(SHA, &SHA.replacen('8', "g", 1), false)),
        (
            "sha256",
            broken(&format!("      sha256: \"{SHA}\"\n"), "", false),
        ),
        (
            "bin",
            broken("bin: kubectl-upgrade-check", "bin: upgrade-check", false),
        ),
        (
            "bin",
            broken(
                "bin: kubectl-upgrade-check",
                "bin: kubectl-upgrade-check.exe",
                false,
            ),
        ),
        (
            "bin",
            broken("      bin: kubectl-upgrade-check\n", "", false),
        ),
        (
            "files",
            broken(
                "      files:\n        - from: kubectl-upgrade-check\n          to: .\n        - from: LICENSE\n          to: .\n",
                "",
                false,
            ),
        ),
        (
            "files",
            broken("        - from: LICENSE\n          to: .\n", "", false),
        ),
        (
            "files",
            broken(
                "        - from: kubectl-upgrade-check\n          to: .\n",
                "",
                false,
            ),
        ),
        (
            "files",
            broken(
                "        - from: LICENSE\n          to: .\n",
                "        - from: LICENSE\n",
                false,
            ),
        ),
        (
            "files",
            broken(
                "        - from: LICENSE\n          to: .\n",
                "        - to: LICENSE\n",
                false,
            ),
        ),
        (
            "files",
            broken(
                "      files:\n        - from: kubectl-upgrade-check\n          to: .\n        - from: LICENSE\n          to: .\n",
                "      files: []\n",
                false,
            ),
        ),
        (
            "selector",
            broken(
                "    - selector:\n        matchLabels:\n          os: linux\n          arch: amd64\n      uri",
                "    - uri",
                false,
            ),
        ),
        (
            "selector",
            broken(
                "    - selector:\n        matchLabels:\n          os: linux\n          arch: amd64\n",
                "    - selector: {}\n",
                false,
            ),
        ),
        (
            "selector",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchLabels: {}\n",
                false,
            ),
        ),
        (
            "selector",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchExpressions: []\n",
                false,
            ),
        ),
        (
            "selector-keys",
            broken(
                "          arch: amd64\n",
                "          arch: amd64\n          libc: musl\n",
                false,
            ),
        ),
        (
            "selector-keys",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchExpressions:\n          - {key: distro, operator: In, values: [debian]}\n",
                false,
            ),
        ),
        (
            "selector-expression",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchExpressions:\n          - {key: os, operator: Contains, values: [linux]}\n",
                false,
            ),
        ),
        (
            "selector-expression",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchExpressions:\n          - {key: os, operator: In, values: []}\n",
                false,
            ),
        ),
        (
            "selector-expression",
            broken(
                "        matchLabels:\n          os: linux\n          arch: amd64\n",
                "        matchExpressions:\n          - {key: os, operator: Exists, values: [linux]}\n",
                false,
            ),
        ),
        (
            "platform-supported",
            broken("os: linux", "os: plan9", false),
        ),
        (
            "platform-supported",
            broken("arch: amd64", "arch: riscv64", false),
        ),
        (
            "platform-overlap",
            broken(
                "os: darwin\n          arch: arm64",
                "os: linux\n          arch: amd64",
                false,
            ),
        ),
        (
            "platform-overlap",
            broken(
                "        matchLabels:\n          os: darwin\n          arch: arm64\n",
                "        matchExpressions:\n          - {key: os, operator: In, values: [linux, darwin]}\n",
                false,
            ),
        ),
        (
            "project-uri",
            broken(
                "download/v0.1.0/kubectl-upgrade-check-linux-amd64",
                "download/v0.0.9/kubectl-upgrade-check-linux-amd64",
                false,
            ),
        ),
        (
            "project-uri",
            broken(
                "check-linux-amd64.tar.gz",
                "check-linux-arm64.tar.gz",
                false,
            ),
        ),
        (
            "project-uri",
            broken("linux-amd64.tar.gz", "linux-amd64.zip", false),
        ),
        (
            "unknown-field",
            broken("      sha256:", "      sha265:", false),
        ),
        ("unknown-field", broken("  caveats:", "  caveat:", false)),
        (
            "unknown-field",
            broken("kind: Plugin\n", "kind: Plugin\nstatus: {}\n", false),
        ),
    ];
    for (rule, text) in &cases {
        assert_fires(stem, text, rule);
    }

    // The name rules look at the file name as well as at metadata.name.
    let renamed = |name: &str| broken("name: upgrade-check", &format!("name: {name}"), false);
    assert_fires("CON", &renamed("CON"), "name-safe");
    assert_fires("lpt1", &renamed("lpt1"), "name-safe");
    assert_fires("upgrade.check", &renamed("upgrade.check"), "name-safe");
    assert_fires("upgrade/check", &renamed("upgrade/check"), "name-safe");
    // krew lets these through; the naming guide does not.
    for bad in [
        "upgrade_check",
        "Upgrade-Check",
        "upgrade--check",
        "-upgrade",
        "upgrade-",
    ] {
        let violations = validate_manifest(bad, &renamed(bad));
        assert!(
            violations.iter().any(|v| v.rule == "name-kebab-case"),
            "{bad}: {violations:#?}"
        );
        if is_safe_plugin_name(bad) {
            assert!(
                !violations.iter().any(|v| v.rule == "name-safe"),
                "{bad}: {violations:#?}"
            );
        }
    }
}

#[test]
fn other_valid_shapes_pass() {
    // matchExpressions instead of matchLabels (the project-uri rule then does not apply).
    let expressions = broken(
        "        matchLabels:\n          os: darwin\n          arch: arm64\n",
        "        matchExpressions:\n          - {key: os, operator: In, values: [darwin]}\n          - {key: arch, operator: NotIn, values: [amd64, \"386\"]}\n",
        false,
    );
    let violations = validate_manifest("upgrade-check", &expressions);
    assert!(violations.is_empty(), "{violations:#?}");

    // A Windows platform needs the .exe binary.
    let windows = broken(
        "os: darwin\n          arch: arm64\n      uri: https://github.com/kubectl-upgrade/kubectl-upgrade/releases/download/v0.1.0/kubectl-upgrade-check-darwin-arm64.tar.gz\n      sha256: \"SHA\"\n      bin: kubectl-upgrade-check\n      files:\n        - from: kubectl-upgrade-check\n"
            .replace("SHA", SHA)
            .as_str(),
        "os: windows\n          arch: amd64\n      uri: https://github.com/kubectl-upgrade/kubectl-upgrade/releases/download/v0.1.0/kubectl-upgrade-check-windows-amd64.tar.gz\n      sha256: \"SHA\"\n      bin: kubectl-upgrade-check.exe\n      files:\n        - from: kubectl-upgrade-check.exe\n"
            .replace("SHA", SHA)
            .as_str(),
        false,
    );
    let violations = validate_manifest("upgrade-check", &windows);
    assert!(violations.is_empty(), "{violations:#?}");
    assert_fires(
        "upgrade-check",
        &windows.replace(
            "bin: kubectl-upgrade-check.exe",
            "bin: kubectl-upgrade-check",
        ),
        "bin",
    );

    // Quoted scalars and a leading "./" in files are fine.
    let quoted = broken("version: v0.1.0", "version: \"v0.1.0\"", false)
        .replace("- from: LICENSE", "- from: ./LICENSE");
    let violations = validate_manifest("upgrade-check", &quoted);
    assert!(violations.is_empty(), "{violations:#?}");
}

// ---------------------------------------------------------------------------
// scripts/package-krew

fn run_script(args: &[&str], envs: &[(&str, &Path)]) -> Result<Output> {
    let root = workspace_root();
    let mut command = Command::new("bash");
    command
        .arg(root.join("scripts/package-krew"))
        .args(args)
        .current_dir(&root)
        .env_remove("SOURCE_DATE_EPOCH");
    for (key, value) in envs {
        command.env(key, value);
    }
    command
        .output()
        .context("running bash scripts/package-krew")
}

#[test]
fn package_script_rejects_bad_input_with_exit_2() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A manifest without a linux/amd64 platform, for the last case.
    let no_linux = dir.path().join("upgrade-check.yaml");
    fs::write(
        &no_linux,
        good_manifest().replace("linux-amd64", "freebsd-amd64"),
    )?;
    let missing = dir.path().join("missing.yaml");

    // (arguments, environment, expected part of the error line)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a Path)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], vec![], "PLUGIN is missing"),
        (vec!["Check"], vec![], "must match"),
        (vec!["../check"], vec![], "must match"),
        (vec!["check;ls"], vec![], "must match"),
        (vec!["no-such-plugin"], vec![], "no plugin crate"),
        (vec!["check", "--frobnicate"], vec![], "unknown option"),
        (vec!["check", "check"], vec![], "only one PLUGIN"),
        (vec!["check", "--target"], vec![], "needs a value"),
        (
            vec!["check", "--version", "0.2.0"],
            vec![],
            "semantic version",
        ),
        (
            vec!["check", "--version", "v0.2"],
            vec![],
            "semantic version",
        ),
        (
            vec!["check", "--target", "riscv64gc-unknown-linux-gnu"],
            vec![],
            "no krew platform",
        ),
        (
            vec!["check"],
            vec![("PACKAGE_KREW_MANIFEST", missing.as_path())],
            "no krew manifest",
        ),
        (
            vec!["check", "--target", "x86_64-unknown-linux-gnu"],
            vec![("PACKAGE_KREW_MANIFEST", no_linux.as_path())],
            "has no platform whose uri ends in",
        ),
    ];
    for (args, envs, expected) in &cases {
        let output = run_script(args, envs)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        ensure!(
            output.status.code() == Some(2),
            "package-krew {args:?}: expected exit 2, got {:?}; stderr: {stderr}",
            output.status.code()
        );
        ensure!(
            stderr.lines().count() == 1 && stderr.starts_with("package-krew: "),
            "package-krew {args:?}: expected one error line, got: {stderr}"
        );
        ensure!(
            stderr.contains(expected),
            "package-krew {args:?}: expected {expected:?} in: {stderr}"
        );
    }
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String> {
    let output = Command::new("sha256sum").arg(path).output()?;
    ensure!(
        output.status.success(),
        "sha256sum {} failed",
        path.display()
    );
    Ok(String::from_utf8(output.stdout)?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

fn sha_line_for(manifest: &str, archive_name: &str) -> Option<String> {
    let mut lines = manifest.lines();
    lines.find(|l| l.trim_start().starts_with("uri:") && l.trim_end().ends_with(archive_name))?;
    lines
        .find(|l| l.trim_start().starts_with("sha256:"))
        .map(|l| {
            l.trim()
                .trim_start_matches("sha256:")
                .trim()
                .trim_matches('"')
                .to_owned()
        })
}

#[test]
#[ignore = "builds the plugin in release mode (minutes); run with KREW_PACKAGE_TEST=1 and --ignored"]
fn package_script_end_to_end() -> Result<()> {
    ensure!(
        std::env::var("KREW_PACKAGE_TEST").as_deref() == Ok("1"),
        "set KREW_PACKAGE_TEST=1 to run this test: it builds kubectl-upgrade-check in release mode"
    );
    let root = workspace_root();
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output()?.stdout)?;
    let (os, arch) = if host.contains("host: x86_64-unknown-linux") {
        ("linux", "amd64")
    } else if host.contains("host: aarch64-unknown-linux") {
        ("linux", "arm64")
    } else if host.contains("host: x86_64-apple-darwin") {
        ("darwin", "amd64")
    } else if host.contains("host: aarch64-apple-darwin") {
        ("darwin", "arm64")
    } else {
        bail!("this host has no platform in krew/upgrade-check.yaml:\n{host}");
    };
    let archive_name = format!("kubectl-upgrade-check-{os}-{arch}.tar.gz");

    let dir = tempfile::tempdir()?;
    let manifest = dir.path().join("upgrade-check.yaml");
    let dist = dir.path().join("dist");
    let original = fs::read_to_string(root.join("krew/upgrade-check.yaml"))?;
    fs::write(&manifest, &original)?;
    let envs = [
        ("PACKAGE_KREW_MANIFEST", manifest.as_path()),
        ("PACKAGE_KREW_DIST", dist.as_path()),
    ];

    let output = run_script(&["check"], &envs)?;
    ensure!(
        output.status.success(),
        "package-krew check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let archive = dist.join(&archive_name);
    let sha = sha256_of(&archive)?;

    // The archive: LICENSE and the binary, owner 0/0, mtime 0.
    let listing = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--numeric-owner",
            "--full-time",
            "-zf",
        ])
        .arg(&archive)
        .output()?;
    ensure!(listing.status.success(), "tar --list failed");
    let listing = String::from_utf8(listing.stdout)?;
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    ensure!(
        names == ["LICENSE", "kubectl-upgrade-check"],
        "archive holds {names:?}:\n{listing}"
    );
    for line in listing.lines() {
        ensure!(
            line.contains(" 0/0 ") && line.contains("1970-01-01 00:00:00"),
            "entry not normalised: {line}"
        );
    }
    ensure!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("kubectl-upgrade-check")),
        "binary is not executable:\n{listing}"
    );

    // The manifest: this platform's sha256 now matches, nothing else changed.
    let updated = fs::read_to_string(&manifest)?;
    ensure!(
        sha_line_for(&updated, &archive_name).as_deref() == Some(sha.as_str()),
        "manifest sha256 for {archive_name} is not {sha}:\n{updated}"
    );
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(updated.lines())
        .filter(|(a, b)| a != b)
        .collect();
    ensure!(
        original.lines().count() == updated.lines().count() && changed.len() <= 1,
        "more than the sha256 line changed: {changed:?}"
    );
    let sidecar = fs::read_to_string(dist.join(format!("{archive_name}.sha256")))?;
    ensure!(
        sidecar == format!("{sha}  {archive_name}\n"),
        "sidecar: {sidecar:?}"
    );
    let violations = validate_manifest("upgrade-check", &updated);
    ensure!(violations.is_empty(), "{violations:#?}");
    if sha_line_for(&original, &archive_name).as_deref() != Some(sha.as_str()) {
        eprintln!(
            "note: krew/upgrade-check.yaml records a different sha256 for {archive_name} than this build ({sha}); run scripts/package-krew check to refresh it"
        );
    }

    // The extracted binary runs.
    let unpack = dir.path().join("unpack");
    fs::create_dir(&unpack)?;
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpack)
        .status()?;
    ensure!(status.success(), "tar -x failed");
    let help = Command::new(unpack.join("kubectl-upgrade-check"))
        .arg("--help")
        .output()?;
    ensure!(help.status.success(), "kubectl-upgrade-check --help failed");

    // A second run gives the same bytes.
    let first = fs::read(&archive)?;
    let output = run_script(&["check"], &envs)?;
    ensure!(output.status.success(), "second run failed");
    ensure!(
        fs::read(&archive)? == first,
        "the archive is not reproducible"
    );

    // --version moves spec.version and every uri to the new tag.
    let output = run_script(&["check", "--version", "v9.8.7"], &envs)?;
    ensure!(
        output.status.success(),
        "package-krew check --version failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bumped = fs::read_to_string(&manifest)?;
    ensure!(bumped.contains("\n  version: v9.8.7\n"), "{bumped}");
    let uris: Vec<&str> = bumped
        .lines()
        .filter(|l| l.trim_start().starts_with("uri:"))
        .collect();
    ensure!(
        !uris.is_empty()
            && uris
                .iter()
                .all(|l| l.contains("/releases/download/v9.8.7/")),
        "{uris:?}"
    );
    let violations = validate_manifest("upgrade-check", &bumped);
    ensure!(violations.is_empty(), "{violations:#?}");
    Ok(())
}
