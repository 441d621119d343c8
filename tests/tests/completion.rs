//! Shell completion of every plugin: the scripts `completion bash|zsh|fish` prints, and the
//! completion kubectl itself asks a plugin for, through the `kubectl_complete-upgrade_<name>`
//! executables that `scripts/link-plugins` (and so `scripts/install`) puts beside the plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

use upgrade_e2e::harness::plugin_binary;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every plugin of the workspace, by directory name under plugins/.
fn plugins() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("plugins"))
        .expect("plugins/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "found plugins {names:?}");
    names
}

#[test]
fn every_plugin_prints_a_completion_script_for_each_shell() {
    for name in plugins() {
        let bin = plugin_binary(&name);
        for shell in ["bash", "zsh", "fish"] {
            let out = Command::new(&bin)
                .args(["completion", shell])
                .output()
                .expect("plugin runs");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{name} completion {shell}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                text.contains(&format!("kubectl-upgrade-{name}")),
                "{name} {shell} script does not name its executable:\n{text}"
            );
        }
        let bad = Command::new(&bin)
            .args(["completion", "tcsh"])
            .output()
            .expect("plugin runs");
        assert_eq!(bad.status.code(), Some(2), "{name} completion tcsh");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(err.lines().count(), 1, "{name}: one line, got {err}");
        assert!(err.contains("tcsh"), "{name}: {err}");
    }
}

/// kubectl 1.26+ completes `kubectl upgrade-NAME …` by running
/// `kubectl_complete-upgrade_NAME` with the words after the plugin name; this drives the real
/// kubectl through that path.
#[test]
fn kubectl_completes_every_plugins_flags_through_its_completion_executable() {
    let bin_dir = tempfile::tempdir().expect("temp dir");
    let target = plugin_binary("check")
        .parent()
        .expect("target dir")
        .to_path_buf();
    let linked = Command::new(workspace().join("scripts/link-plugins"))
        .arg(bin_dir.path())
        .arg(&target)
        .output()
        .expect("link-plugins runs");
    assert!(
        linked.status.success(),
        "{}",
        String::from_utf8_lossy(&linked.stderr)
    );
    let path = format!(
        "{}:{}:{}",
        bin_dir.path().display(),
        target.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for name in plugins() {
        let under = name.replace('-', "_");
        assert!(
            bin_dir
                .path()
                .join(format!("kubectl_complete-upgrade_{under}"))
                .exists(),
            "no completion executable for {name}"
        );
        let out = Command::new("kubectl")
            .args(["__complete", &format!("upgrade-{name}"), "--kubec"])
            .env("PATH", &path)
            .output()
            .expect("kubectl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().any(|l| l.starts_with("--kubeconfig")),
            "kubectl did not complete --kubeconfig for upgrade-{name}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines.last().copied(), Some(":4"), "{name}: {text}");
    }
}
