//! Helpers for tests that drive real binaries against the simulated cluster: a cluster with its
//! kubeconfig in a temporary directory, and `kubectl` runs against it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::sim::{SimCluster, SimGuard, SimOptions};

/// A cluster on its own thread plus a kubeconfig for it; everything goes when dropped.
pub struct TestCluster {
    /// The running cluster.
    pub guard: SimGuard,
    /// The kubeconfig path.
    pub kubeconfig: PathBuf,
    /// The temporary directory holding the kubeconfig and the data dir.
    pub dir: tempfile::TempDir,
}

/// What one `kubectl` run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the run succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "kubectl failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }
}

/// The scenarios shipped in tests/scenarios.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

impl TestCluster {
    /// Starts a cluster with these scenarios.
    pub fn start(scenarios: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let guard = SimCluster::spawn_blocking(SimOptions {
            data_dir: dir.path().join("data"),
            scenarios: scenarios.iter().map(|s| scenario(s)).collect(),
        })?;
        let kubeconfig = dir.path().join("kubeconfig");
        guard.write_kubeconfig(&kubeconfig)?;
        Ok(Self {
            guard,
            kubeconfig,
            dir,
        })
    }

    /// Runs `kubectl --kubeconfig … <args>`.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with text on standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
            w.write_all(text.as_bytes()).expect("write stdin");
        }
        Run::from(child.wait_with_output().expect("kubectl finishes"))
    }

    /// What a test prints when a pod's server never answered: the namespace's pods with their
    /// restart counts, the container logs of `target` (a pod or `deploy/NAME`), and those of
    /// the previous run of a restarted container.
    pub fn pod_report(&self, ns: &str, target: &str) -> String {
        let mut out = String::new();
        for args in [
            vec!["get", "pods", "-n", ns, "-o", "wide"],
            vec!["logs", "-n", ns, target, "--all-containers", "--tail", "40"],
            vec![
                "logs",
                "-n",
                ns,
                target,
                "--all-containers",
                "--previous",
                "--tail",
                "40",
            ],
            vec!["get", "events", "-n", ns],
        ] {
            let r = self.kubectl(&args);
            out.push_str(&format!(
                "$ kubectl {}\n{}{}\n",
                args.join(" "),
                r.stdout,
                r.stderr
            ));
        }
        out
    }

    /// `kubectl apply -f -` with this YAML.
    pub fn apply(&self, yaml: &str) -> String {
        self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml)).ok()
    }

    /// `kubectl get … -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl(&a).ok()).expect("kubectl prints JSON")
    }

    /// Polls `kubectl get … -o jsonpath=<path>` until it prints `want` or `timeout` passes.
    pub fn wait_for(&self, args: &[&str], jsonpath: &str, want: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let expr = format!("jsonpath={jsonpath}");
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", &expr]);
        loop {
            let r = self.kubectl(&a);
            if r.code == 0 && r.stdout == want {
                return r.stdout;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for {args:?} {jsonpath} == {want:?}; last: {} {}",
                    r.stdout, r.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A run's stdout and stderr together, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A plugin binary the workspace built (`kubectl-upgrade-<name>`), found next to the running
/// test's own target directory. Fails loudly when it was not built.
pub fn plugin_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(format!("kubectl-upgrade-{name}"));
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (scripts/test does)",
        bin.display()
    );
    bin
}

impl TestCluster {
    /// Runs a plugin binary against this cluster.
    pub fn plugin(&self, name: &str, args: &[&str]) -> Output {
        Command::new(plugin_binary(name))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("plugin runs")
    }

    /// `kubectl get <args> -o jsonpath=<path>`; empty when the object does not exist.
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        let p = format!("jsonpath={path}");
        a.extend_from_slice(&["-o", &p]);
        self.kubectl(&a).stdout
    }
}

/// Runs the rehearsal `tests/rehearsals/<name>.yaml` with the workspace's built plugins (with
/// `kill`, its plugin killed at the declared step and the step run again), prints everything it
/// printed, and panics unless it passed with every declared database and tree compared and
/// `kubectl upgrade-verify verify` passing.
pub fn rehearse(name: &str, kill: bool) -> crate::rehearsal::Report {
    use crate::rehearsal::{self, Verify};
    let def = rehearsal::load(name).unwrap_or_else(|e| panic!("{e:#}"));
    let plugins_dir = plugin_binary("check")
        .parent()
        .expect("target dir")
        .to_path_buf();
    let mut opts = rehearsal::Options::new(plugins_dir);
    opts.kill = kill;
    let mut out = Vec::new();
    let result = rehearsal::rehearse(&def, &opts, &mut out);
    let printed = String::from_utf8_lossy(&out).into_owned();
    println!("{printed}");
    let report = result.unwrap_or_else(|e| panic!("rehearsal {name} could not run: {e:#}"));
    assert!(report.passed(), "rehearsal {name} failed:\n{printed}");
    let declared = def.data.mysql.len() + def.data.files.len();
    assert!(declared > 0, "rehearsal {name} declares no data to compare");
    assert_eq!(
        report.comparison.summary.len(),
        declared,
        "every declared database and tree is compared equal:\n{printed}"
    );
    assert_eq!(report.verify, Verify::Passed, "{printed}");
    if kill {
        let killed: Vec<&str> = report
            .steps
            .iter()
            .filter(|s| s.killed)
            .map(|s| s.command.as_str())
            .collect();
        assert_eq!(
            killed.len(),
            1,
            "one step was killed and run again:\n{printed}"
        );
    }
    report
}

/// Panics unless MariaDB's server and client are installed (the FATE rehearsals need them).
pub fn require_mariadb() {
    assert!(
        Path::new("/usr/sbin/mariadbd").exists(),
        "MariaDB is not installed (apt-get install -y mariadb-server mariadb-client; scripts/test does it)"
    );
}
