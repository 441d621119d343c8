//! Issue 8, item 2: the check's runbooks run as printed. For each built-in scenario the check
//! is run live (with the target manifests a user would give), and its steps are run in order
//! against the simulated cluster, each as printed through kubectl: every step of a plugin in
//! [`RUN`] and every other kubectl command must succeed. The run stops at the first step of the
//! application's own tooling (`kubefate`, `juju`), which only a rehearsal can play; steps of
//! the plugins in [`NOT_YET`] are skipped until those plugins are on main (move them to [`RUN`]
//! as they land), and so are `upgrade-verify wait|verify` after a skipped step.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use upgrade_e2e::harness::{TestCluster, plugin_binary, scenario};

/// Plugins whose steps run.
const RUN: &[&str] = &["migrate-pv", "migrate-db", "restart", "verify"];
/// Plugins whose steps are skipped for now: `kubectl upgrade-backup dump` needs the scenario's
/// MySQL to answer, which the FATE scenarios here do not wait for yet.
const NOT_YET: &[&str] = &["backup"];

/// The longest one step may take.
const STEP_LIMIT: Duration = Duration::from_secs(240);

struct Case {
    scenarios: &'static [&'static str],
    profile: &'static str,
    namespace: &'static str,
    to: &'static str,
    /// Target manifests (copied into the working directory and given with -f).
    targets: &'static [&'static str],
    /// Other files the steps name, copied into the working directory: (name, scenario path).
    files: &'static [(&'static str, &'static str)],
    /// The run stops before the first step starting with this, for the reason given: what the
    /// simulated cluster or another plugin does not do yet. Steps after it are not run.
    stop_before: Option<(&'static str, &'static str)>,
}

/// A directory with `kubectl-upgrade_<name>` links to every plugin built, for kubectl's lookup.
fn plugin_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let target = plugin_binary("check")
        .parent()
        .expect("target dir")
        .to_path_buf();
    for name in [
        "check",
        "migrate-pv",
        "backup",
        "migrate-db",
        "restart",
        "verify",
    ] {
        let exe = target.join(format!("kubectl-upgrade-{name}"));
        if exe.exists() {
            let link = bin.join(format!("kubectl-upgrade_{}", name.replace('-', "_")));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&exe, &link).expect("link");
        }
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir").flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).expect("copy");
    }
}

/// Runs kubectl with these words in `dir`; (exit code, stdout, stderr), killed at the limit.
fn kubectl(
    cluster: &TestCluster,
    dir: &Path,
    path: &str,
    words: &[String],
) -> (Option<i32>, String, String) {
    let mut child = Command::new("kubectl")
        .args(words)
        .current_dir(dir)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let started = Instant::now();
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(o) = out.as_mut() {
                let _ = o.read_to_string(&mut s);
            }
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = err.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        }),
    );
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > STEP_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        code,
        readers.0.join().unwrap_or_default(),
        readers.1.join().unwrap_or_default(),
    )
}

/// Runs the check and then its steps; returns the commands that ran and those skipped.
fn run_runbook(case: &Case) -> (Vec<String>, Vec<String>) {
    let cluster = TestCluster::start(case.scenarios).expect("cluster");
    // A user runs the check on an installed application: its claims are bound (the binder
    // resyncs on a period, so right after the scenario loads some may still be Pending).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let phases = cluster.jsonpath(&["pvc", "-n", case.namespace], "{.items[*].status.phase}");
        if phases.split_whitespace().all(|p| p == "Bound") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "claims in {} never all bound: {phases}",
            case.namespace
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let dir = cluster.dir.path().join("work");
    std::fs::create_dir_all(&dir).expect("workdir");
    let path = plugin_path(cluster.dir.path());
    let mut args: Vec<String> = [
        "upgrade-check",
        "--profile",
        case.profile,
        "-n",
        case.namespace,
        "--to",
        case.to,
        "-o",
        "json",
    ]
    .map(String::from)
    .to_vec();
    for t in case.targets {
        let name = Path::new(t).file_name().expect("file name");
        copy_tree(&scenario(t), &dir.join(name));
        args.push("-f".into());
        args.push(name.to_string_lossy().into_owned());
    }
    for (name, from) in case.files {
        copy_tree(&scenario(from), &dir.join(name));
    }
    let (code, out, err) = kubectl(&cluster, &dir, &path, &args);
    assert!(matches!(code, Some(0 | 1)), "check: {err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let steps: Vec<String> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["command"].as_str().map(str::to_string))
        .collect();
    assert!(!steps.is_empty(), "{report:#}");
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for command in &steps {
        if let Some((prefix, reason)) = case.stop_before
            && command.starts_with(prefix)
        {
            eprintln!("stopped before `{command}`: {reason}");
            break;
        }
        let words = shlex::split(command).unwrap_or_else(|| panic!("{command}: does not parse"));
        assert!(
            !command.contains('<'),
            "{command}: a placeholder is left in it"
        );
        match words.first().map(String::as_str) {
            Some("kubectl") => {}
            _ => break, // the application's own tooling: only a rehearsal plays it
        }
        let mut words = words[1..].to_vec();
        if let Some(plugin) = words[0].strip_prefix("upgrade-") {
            // Proof steps prove the whole runbook: after a skipped step they cannot pass.
            let proof = plugin == "verify" && matches!(words[1].as_str(), "wait" | "verify");
            if NOT_YET.contains(&plugin) || (proof && !skipped.is_empty()) {
                skipped.push(command.clone());
                continue;
            }
            assert!(RUN.contains(&plugin), "{command}: unknown plugin {plugin}");
            // Without a terminal only --yes answers a confirmation, as a script would.
            let help = kubectl(
                &cluster,
                &dir,
                &path,
                &[words[0].clone(), words[1].clone(), "--help".into()],
            )
            .1;
            if help.contains("--yes") && !words.iter().any(|w| w == "--yes") {
                words.push("--yes".into());
            }
        }
        let (code, out, err) = kubectl(&cluster, &dir, &path, &words);
        assert_eq!(
            code,
            Some(0),
            "step `{command}` failed\nran so far: {ran:#?}\nstdout:\n{out}\nstderr:\n{err}"
        );
        ran.push(command.clone());
    }
    (ran, skipped)
}

fn ran_any(ran: &[String], needle: &str) -> bool {
    ran.iter().any(|c| c.contains(needle))
}

#[test]
fn issue8_2_fate_storage_class_runbook_runs_as_printed() {
    let (ran, skipped) = run_runbook(&Case {
        scenarios: &["fate-1.8.0-storage-class.yaml"],
        profile: "fate",
        namespace: "fate-9999",
        to: "v1.9.0",
        targets: &["fate-1.9.0.yaml"],
        files: &[],
        stop_before: None,
    });
    for claim in [
        "mysql-data",
        "python-data",
        "client-data",
        "nodemanager-0-data",
        "nodemanager-1-data",
    ] {
        assert!(
            ran.iter()
                .any(|c| c.contains("upgrade-migrate-pv adopt ")
                    && c.contains(&format!(" {claim}="))),
            "{claim}: {ran:#?}"
        );
    }
    assert_eq!(
        ran.iter()
            .filter(|c| c.contains("upgrade-migrate-pv adopt "))
            .count(),
        1,
        "one command adopts the five claims: {ran:#?}"
    );
    assert!(
        ran.iter()
            .any(|c| c.contains("adopt mysql-data=data-mysql-0 ")
                && c.contains("--for-statefulset mysql")
                && c.contains("--for-statefulset nodemanager")
                && c.contains("-f fate-1.9.0.yaml")),
        "the adoptions are checked against the target manifests: {ran:#?}"
    );
    assert!(ran_any(&ran, "upgrade-migrate-pv retain"), "{ran:#?}");
    assert!(
        skipped.iter().all(|c| c.contains("upgrade-backup")),
        "{skipped:#?}"
    );
}

#[test]
fn issue8_2_fate_existing_claims_runbook_runs_as_printed() {
    let (ran, _) = run_runbook(&Case {
        scenarios: &["fate-1.7.2-existing-pvc.yaml"],
        profile: "fate",
        namespace: "fate-9999",
        to: "v1.8.0",
        targets: &["fate-1.8.0-existing-pvc-target.yaml"],
        files: &[],
        stop_before: None,
    });
    assert!(ran_any(&ran, "upgrade-verify record"), "{ran:#?}");
    assert!(!ran_any(&ran, "adopt"), "existing claims stay as they are");
}

#[test]
fn issue8_2_kubeflow_runbook_runs_as_printed() {
    let (ran, _) = run_runbook(&Case {
        scenarios: &["kubeflow-minio.yaml"],
        profile: "kubeflow",
        namespace: "kubeflow",
        to: "1.7",
        targets: &["kubeflow-1.7-minio.yaml"],
        files: &[],
        stop_before: None,
    });
    assert!(
        ran_any(&ran, "upgrade-migrate-pv retain minio-data-minio-0"),
        "{ran:#?}"
    );
}

#[test]
fn issue8_2_rok_runbook_runs_as_printed() {
    let (ran, skipped) = run_runbook(&Case {
        scenarios: &["rok.yaml"],
        profile: "rok",
        namespace: "rok",
        to: "v2",
        targets: &["rok-v2/rok-tools-eks.yaml"],
        files: &[("rok", "rok-v2/rok")],
        stop_before: None,
    });
    assert!(
        ran_any(&ran, "kubectl delete sts rok-tools -n rok --cascade=orphan"),
        "{ran:#?}"
    );
    assert_eq!(
        ran.iter()
            .filter(|c| c.contains("--cascade=orphan"))
            .count(),
        1,
        "one delete per StatefulSet: {ran:#?}"
    );
    assert!(
        ran_any(&ran, "apply -f rok-tools-eks.yaml -n rok"),
        "{ran:#?}"
    );
    assert!(
        ran_any(&ran, "rok/rok-operator/overlays/deploy"),
        "{ran:#?}"
    );
    assert!(ran_any(&ran, "upgrade-restart quiesce"), "{ran:#?}");
    assert!(ran_any(&ran, "upgrade-restart resume"), "{ran:#?}");
    assert!(skipped.is_empty(), "{skipped:#?}");
}

#[test]
fn issue8_2_foundationdb_runbook_runs_as_printed() {
    let cluster_ns = "default";
    let (ran, _) = run_runbook(&Case {
        scenarios: &["fdb-cluster.yaml"],
        profile: "foundationdb",
        namespace: cluster_ns,
        to: "7.3.43",
        targets: &[],
        files: &[],
        stop_before: None,
    });
    assert!(
        ran_any(&ran, "kubectl patch foundationdbcluster sample"),
        "{ran:#?}"
    );
}
