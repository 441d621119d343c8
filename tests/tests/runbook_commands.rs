//! Every runbook step of every built-in profile is a command that exists: the check renders its
//! runbooks from the profiles' fixtures, and each `kubectl upgrade-NAME …` step goes through that
//! plugin's own argument parser (the clap definition its binary uses), each other `kubectl …` step
//! through the real kubectl's flag parser (`--help` after the step's own flags: cobra rejects an
//! unknown command or flag before it prints help). No cluster is involved.
//!
//! A step fails when it names a plugin or subcommand that does not exist, a flag its parser does
//! not take, a value its parser refuses, misses a required argument, or keeps a placeholder
//! (`{namespace}`, `<charm>`) that the check did not fill. Every step template of every profile
//! must be rendered by at least one case, so a step cannot hide from the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use upgrade_e2e::harness::plugin_binary;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn fixture(name: &str) -> String {
    workspace()
        .join("plugins/check/tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// One check run whose runbook is collected: profile, the check's arguments after `--profile`.
struct Case {
    profile: &'static str,
    args: Vec<String>,
}

fn case(profile: &'static str, args: &[&str]) -> Case {
    Case {
        profile,
        args: args.iter().map(|a| a.to_string()).collect(),
    }
}

/// Runs that render every step of every built-in profile, offline.
fn cases() -> Vec<Case> {
    let fate_171 = fixture("fate-1.7.1-existing-claim.yaml");
    let fate_180 = fixture("fate-1.8.0-storage-class.yaml");
    let example = workspace().join("examples/fate/cluster.yaml");
    let example = example.display().to_string();
    let fdb = fixture("fdb-cluster.yaml");
    let kubeflow = fixture("kubeflow-minio.yaml");
    let kubeflow_17 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/kubeflow-1.7-minio.yaml")
        .display()
        .to_string();
    let rok = fixture("rok.yaml");
    let rok_v2 = fixture("rok-tools-v2.yaml");
    vec![
        case("fate", &["--from-file", &fate_171, "--to", "v1.7.2"]),
        case("fate", &["--from-file", &fate_171, "--to", "v1.9.0"]),
        case("fate", &["--from-file", &fate_180, "--to", "v1.9.0"]),
        case("fate", &["--from-file", &fate_180, "--to", "v1.10.0"]),
        case("fate", &["--from-file", &example, "--to", "v1.9.0"]),
        case("foundationdb", &["--from-file", &fdb, "--to", "7.3.1"]),
        case("kubeflow", &["--from-file", &kubeflow, "--to", "1.7"]),
        case(
            "kubeflow",
            &["--from-file", &kubeflow, "--to", "1.7", "-f", &kubeflow_17],
        ),
        case(
            "rok",
            &[
                "--from-file",
                &rok,
                "-n",
                "rok",
                "--to",
                "v2",
                "-f",
                &rok_v2,
            ],
        ),
    ]
}

/// The runbook of one case: (description, command) pairs from `-o json`.
fn runbook(case: &Case) -> Vec<(String, String)> {
    let out = Command::new(plugin_binary("check"))
        .args(["--profile", case.profile])
        .args(&case.args)
        .args(["-o", "json"])
        .output()
        .expect("check runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "check --profile {} {:?} could not run: {}",
        case.profile,
        case.args,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check prints JSON");
    report["steps"]
        .as_array()
        .expect("steps[]")
        .iter()
        .map(|s| {
            (
                s["description"].as_str().unwrap_or_default().to_string(),
                s["command"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Placeholders the check should have filled: `{name}`, `{name:component}`, `<words>`.
fn unfilled(command: &str) -> Option<String> {
    let bytes = command.as_bytes();
    for (open, close) in [(b'{', b'}'), (b'<', b'>')] {
        let mut i = 0;
        while let Some(start) = bytes[i..].iter().position(|&b| b == open).map(|p| p + i) {
            let Some(end) = bytes[start + 1..].iter().position(|&b| b == close) else {
                break;
            };
            let inner = &command[start + 1..start + 1 + end];
            let looks_like_placeholder = !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || " :-_".contains(c));
            if looks_like_placeholder {
                return Some(command[start..start + end + 2].to_string());
            }
            i = start + 1;
        }
    }
    None
}

/// Parses one plugin step with that plugin's own argument definition.
fn parse_plugin(plugin: &str, argv: &[String]) -> Result<(), String> {
    use clap::Parser;
    let bin = format!("kubectl upgrade-{plugin}");
    let args = std::iter::once(bin.clone()).chain(argv.iter().cloned());
    let result = match plugin {
        "check" => kubectl_upgrade_check::Args::try_parse_from(args).map(drop),
        "migrate-pv" => kubectl_upgrade_migrate_pv::Args::try_parse_from(args).map(drop),
        "backup" => kubectl_upgrade_backup::Args::try_parse_from(args).map(drop),
        "migrate-db" => kubectl_upgrade_migrate_db::Args::try_parse_from(args).map(drop),
        "restart" => kubectl_upgrade_restart::Args::try_parse_from(args).map(drop),
        "verify" => kubectl_upgrade_verify::Args::try_parse_from(args).map(drop),
        other => return Err(format!("there is no plugin upgrade-{other}")),
    };
    result.map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())
}

/// Checks one kubectl step's command and flags with the real kubectl (no cluster: `--help`
/// after the step's flags, which cobra parses first).
fn parse_kubectl(argv: &[String]) -> Result<(), String> {
    let out = Command::new("kubectl")
        .args(argv)
        .arg("--help")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .map_err(|e| format!("kubectl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The profile's step templates, each turned into a matcher over rendered commands.
fn templates(profile: &str) -> Vec<String> {
    let text = std::fs::read_to_string(workspace().join(format!("shared/profiles/{profile}.yaml")))
        .expect("profile file");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("command:"))
        // `command: [pkill, fdbserver]` is an in-place restart's argv, not a runbook step.
        .filter(|c| !c.trim_start().starts_with('['))
        .map(|c| {
            let c = c.trim();
            let c = c
                .strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .unwrap_or(c);
            c.replace("\\\"", "\"")
        })
        .collect()
}

/// True when `command` is an instance of `template`: the literal parts in order, anything
/// where a placeholder stands.
fn instance_of(template: &str, command: &str) -> bool {
    let template = template.replace("{{", "\u{1}").replace("}}", "\u{2}");
    let mut literals = Vec::new();
    let mut rest = template.as_str();
    while let Some(start) = rest.find('{') {
        literals.push(rest[..start].to_string());
        rest = rest[start..]
            .find('}')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    literals.push(rest.to_string());
    let literals: Vec<String> = literals
        .into_iter()
        .map(|l| l.replace('\u{1}', "{").replace('\u{2}', "}"))
        .collect();
    let mut at = 0;
    for (i, lit) in literals.iter().enumerate() {
        if lit.is_empty() {
            continue;
        }
        let found = if i == 0 {
            command.starts_with(lit.as_str()).then_some(0)
        } else {
            command[at..].find(lit.as_str()).map(|p| p + at)
        };
        match found {
            Some(p) => at = p + lit.len(),
            None => return false,
        }
    }
    literals
        .last()
        .is_none_or(|l| l.is_empty() || command.ends_with(l.as_str()))
}

#[test]
fn every_runbook_step_of_every_profile_is_a_command_that_exists() {
    let mut problems = Vec::new();
    let mut rendered: Vec<(&str, String)> = Vec::new();
    for case in cases() {
        for (description, command) in runbook(&case) {
            rendered.push((case.profile, command.clone()));
            let at = format!("{} {:?}: step \"{description}\"", case.profile, case.args);
            if let Some(p) = unfilled(&command) {
                problems.push(format!("{at}: placeholder {p} left in `{command}`"));
                continue;
            }
            let Some(argv) = shlex::split(&command) else {
                problems.push(format!("{at}: `{command}` is not a shell command"));
                continue;
            };
            let verdict = match argv.first().map(String::as_str) {
                Some("kubectl") => match argv.get(1).and_then(|a| a.strip_prefix("upgrade-")) {
                    Some(plugin) => parse_plugin(plugin, &argv[2..]),
                    None => parse_kubectl(&argv[1..]),
                },
                // The application's own tools (kubefate, juju) are not ours to parse.
                Some(_) => Ok(()),
                None => Err("empty command".to_string()),
            };
            if let Err(why) = verdict {
                problems.push(format!("{at}: `{command}`: {why}"));
            }
        }
    }
    for profile in ["fate", "foundationdb", "kubeflow", "rok"] {
        for template in templates(profile) {
            let seen = rendered
                .iter()
                .any(|(p, c)| *p == profile && instance_of(&template, c));
            if !seen {
                problems.push(format!(
                    "{profile}: no case renders the step `{template}`; add one to cases()"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} runbook problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_placeholder_and_template_matchers_tell_right_from_wrong() {
    assert_eq!(
        unfilled("kubectl get pods -n {namespace}"),
        Some("{namespace}".into())
    );
    assert_eq!(
        unfilled("juju refresh <charm> --channel 1.7/stable"),
        Some("<charm>".into())
    );
    assert_eq!(
        unfilled("kubectl patch x -p '{\"spec\":{\"version\":\"7.3.1\"}}'"),
        None
    );
    assert_eq!(unfilled("mysql < dump.sql"), None);
    assert!(instance_of(
        "kubectl scale deploy/{workload:mysql} -n {namespace}",
        "kubectl scale deploy/mysql -n fate-9999"
    ));
    assert!(!instance_of(
        "kubectl scale deploy/{workload:mysql} -n {namespace}",
        "kubectl delete deploy/mysql -n fate-9999"
    ));
    assert!(instance_of(
        "kubectl patch fdb {instance} -p '{{\"v\":\"{to}\"}}'",
        "kubectl patch fdb c -p '{\"v\":\"7.3.1\"}'"
    ));
    assert!(parse_plugin("migrate-pv", &["status".into(), "-n".into(), "x".into()]).is_ok());
    assert!(parse_plugin("migrate-pv", &["status".into(), "--bogus".into()]).is_err());
    assert!(parse_plugin("nosuch", &[]).is_err());
    assert!(parse_kubectl(&["scale".into(), "deploy/x".into(), "--replicas=0".into()]).is_ok());
    assert!(parse_kubectl(&["scale".into(), "deploy/x".into(), "--replicaz=0".into()]).is_err());
}
