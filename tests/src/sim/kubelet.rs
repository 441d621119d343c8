//! The node agent: runs each pod as a sandbox process holding a private mount and network
//! namespace (`unshare`), with the pod's volumes bind-mounted at their mountPaths, and each
//! container as a process entered into that sandbox (`nsenter`), like the pause container and
//! the containers of a real pod. Exit codes and restarts become container statuses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::meta;

/// One container's process and history.
#[derive(Debug)]
pub struct ContainerRun {
    child: Option<Child>,
    /// Process id of the running process.
    pub pid: Option<u32>,
    /// Restarts so far.
    pub restarts: u32,
    started_at: String,
    /// When the running process started (readiness probes wait initialDelaySeconds from it).
    started: Instant,
    /// Last termination: exit code, start and finish time.
    last: Option<(i32, String, String)>,
    /// Whether it will not be started again.
    pub done: bool,
    /// The env it runs with (exec uses it too).
    pub env: Vec<(String, String)>,
    argv: Vec<String>,
    workdir: String,
}

/// One pod's sandbox and containers.
#[derive(Debug)]
pub struct PodRun {
    sandbox: Child,
    /// Pid of the process holding the pod's namespaces.
    pub ns_pid: u32,
    /// Containers by name.
    pub containers: HashMap<String, ContainerRun>,
    /// Directory with logs and pod-local volumes.
    pub dir: PathBuf,
}

type Pods = Arc<Mutex<HashMap<String, PodRun>>>;

/// A readiness probe worker's last result; dropping it stops the worker.
struct Probe {
    ready: bool,
    _stop: mpsc::Sender<()>,
}

type Probes = Arc<Mutex<HashMap<String, Probe>>>;

/// What a readiness probe runs and when (the container's `readinessProbe`).
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// The exec command.
    pub argv: Vec<String>,
    /// periodSeconds.
    pub period: Duration,
    /// timeoutSeconds.
    pub timeout: Duration,
    /// initialDelaySeconds.
    pub initial_delay: Duration,
}

/// All pods on the node, by uid.
pub struct Kubelet {
    root: PathBuf,
    pods: Pods,
    /// When terminating pods were asked to stop, and when crashed containers may restart.
    timers: Mutex<HashMap<String, std::time::Instant>>,
    /// Readiness probe workers and their last results, per `<uid>/<container>`.
    probes: Probes,
    /// Told when a readiness probe's result changed, which the store does not see yet, so the
    /// pod's status is written at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// Set at shutdown: nothing starts any more, so a sync racing with shutdown leaks nothing.
    stopped: Arc<AtomicBool>,
}

fn kill_group(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs every process in the mount namespace of `ns_pid` (what tearing down a pod's
/// sandbox does to whatever still runs in it).
fn kill_namespace(ns_pid: u32) {
    let Ok(target) = std::fs::read_link(format!("/proc/{ns_pid}/ns/mnt")) else {
        return;
    };
    let Ok(own) = std::fs::read_link("/proc/self/ns/mnt") else {
        return;
    };
    if target == own {
        return;
    }
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|l| l == target)
                })
                .map(|pid| pid.to_string())
                .collect()
        })
        .unwrap_or_default();
    if !pids.is_empty() {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL"])
            .args(&pids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Kubelet {
    /// A kubelet keeping pod state under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            pods: Arc::new(Mutex::new(HashMap::new())),
            timers: Mutex::new(HashMap::new()),
            probes: Arc::new(Mutex::new(HashMap::new())),
            wake: Arc::new(tokio::sync::Notify::new()),
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A timer (`<uid>` for termination, `<uid>/<container>` for restart back-off).
    pub fn timer(&self, key: &str) -> Option<std::time::Instant> {
        self.timers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
    }

    /// Sets or clears a timer.
    pub fn set_timer(&self, key: &str, at: Option<std::time::Instant>) {
        let mut t = self.timers.lock().unwrap_or_else(|p| p.into_inner());
        match at {
            Some(i) => {
                t.insert(key.to_string(), i);
            }
            None => {
                t.remove(key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodRun>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of a pod (logs, emptyDirs, projected config maps and secrets).
    pub fn pod_dir(&self, ns: &str, name: &str, uid: &str) -> PathBuf {
        self.root.join(format!("{ns}_{name}_{uid}"))
    }

    /// Whether a pod has a sandbox.
    pub fn running(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }

    /// Starts a pod's sandbox with these bind mounts (source, target, read-only) and tmpfs paths.
    pub fn start_sandbox(
        &self,
        uid: &str,
        dir: PathBuf,
        mounts: &[(PathBuf, String, bool)],
        tmpfs: &[&str],
    ) -> anyhow::Result<()> {
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("the node is shutting down");
        }
        std::fs::create_dir_all(dir.join("logs"))?;
        let mut script = String::from("ip link set lo up 2>/dev/null\n");
        for t in tmpfs {
            script.push_str(&format!(
                "mkdir -p {0} && mount -t tmpfs tmpfs {0} || exit 1\n",
                shell_quote(t)
            ));
        }
        for (src, target, ro) in mounts {
            let (s, t) = (shell_quote(&src.to_string_lossy()), shell_quote(target));
            if src.is_dir() {
                script.push_str(&format!("mkdir -p {t} && mount --bind {s} {t} || exit 1\n"));
            } else {
                script.push_str(&format!(
                    "mkdir -p \"$(dirname {t})\" && touch {t} && mount --bind {s} {t} || exit 1\n"
                ));
            }
            if *ro {
                script.push_str(&format!("mount -o remount,bind,ro {t}\n"));
            }
        }
        script.push_str("echo ready > /dev/stderr\nexec sleep infinity\n");
        let mut cmd = Command::new("unshare");
        // Each pod gets its own PID namespace with its own /proc, as a pod sandbox does
        // (without `shareProcessNamespace`/`hostPID`): `pkill fdbserver` or `ps` in one pod
        // sees only that pod's processes.
        cmd.args([
            "--mount",
            "--net",
            "--pid",
            "--mount-proc",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
        let mut sandbox = cmd.spawn()?;
        let upid = sandbox.id().unwrap_or_default();
        // Wait for the mounts (the script prints `ready`), then find the forked child.
        let err = sandbox
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let mut out = String::new();
        {
            use std::io::Read;
            let fd = err.into_owned_fd()?;
            let mut f = std::fs::File::from(fd);
            let mut buf = [0u8; 256];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.push_str(&String::from_utf8_lossy(&buf[..n]));
                if out.contains("ready") {
                    break;
                }
            }
        }
        if !out.contains("ready") {
            anyhow::bail!("pod sandbox failed: {out}");
        }
        let children = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))?;
        let ns_pid: u32 = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("sandbox has no child"))?;
        self.lock().insert(
            uid.to_string(),
            PodRun {
                sandbox,
                ns_pid,
                containers: HashMap::new(),
                dir,
            },
        );
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            self.stop_pod(uid);
            anyhow::bail!("the node is shutting down");
        }
        Ok(())
    }

    /// Starts (or restarts) one container in a pod's sandbox.
    pub fn start_container(
        &self,
        uid: &str,
        name: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        workdir: String,
    ) -> anyhow::Result<()> {
        let mut pods = self.lock();
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            anyhow::bail!("the node is shutting down");
        }
        let pod = pods
            .get_mut(uid)
            .ok_or_else(|| anyhow::anyhow!("no sandbox"))?;
        let log_path = pod.dir.join("logs").join(format!("{name}.log"));
        if pod.containers.contains_key(name) {
            // A restarted container starts a new log; the last one stays for `--previous`.
            let _ = std::fs::rename(
                &log_path,
                pod.dir.join("logs").join(format!("{name}.previous.log")),
            );
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pod.dir.join("logs").join(format!("{name}.log")))?;
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &pod.ns_pid.to_string(),
            "-m",
            "-n",
            "-p",
            "--",
            "sh",
            "-c",
            "cd \"$0\" 2>/dev/null; exec \"$@\"",
            &workdir,
        ])
        .args(&argv)
        .env_clear()
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
        let child = cmd.spawn()?;
        let entry = pod
            .containers
            .entry(name.to_string())
            .or_insert_with(|| ContainerRun {
                child: None,
                pid: None,
                restarts: 0,
                started_at: String::new(),
                started: Instant::now(),
                last: None,
                done: false,
                env: env.clone(),
                argv: argv.clone(),
                workdir: workdir.clone(),
            });
        if entry.last.is_some() {
            entry.restarts += 1;
        }
        entry.pid = child.id();
        entry.child = Some(child);
        entry.started_at = meta::now();
        entry.started = Instant::now();
        entry.env = env;
        entry.argv = argv;
        entry.workdir = workdir;
        Ok(())
    }

    /// Reaps exited containers; returns the names that exited since the last poll.
    pub fn poll(&self, uid: &str) -> Vec<(String, i32)> {
        let mut pods = self.lock();
        let Some(pod) = pods.get_mut(uid) else {
            return vec![];
        };
        let mut exited = Vec::new();
        for (name, c) in pod.containers.iter_mut() {
            if let Some(child) = c.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let code = status.code().unwrap_or_else(|| {
                    128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(9)
                });
                c.last = Some((code, c.started_at.clone(), meta::now()));
                c.child = None;
                c.pid = None;
                exited.push((name.clone(), code));
            }
        }
        exited
    }

    /// Marks a container as never to be restarted.
    pub fn finish(&self, uid: &str, name: &str) {
        if let Some(c) = self
            .lock()
            .get_mut(uid)
            .and_then(|p| p.containers.get_mut(name))
        {
            c.done = true;
        }
    }

    /// Restarts an exited container with its previous command.
    pub fn restart(&self, uid: &str, name: &str) -> anyhow::Result<()> {
        let (argv, env, wd) = {
            let pods = self.lock();
            let c = pods
                .get(uid)
                .and_then(|p| p.containers.get(name))
                .ok_or_else(|| anyhow::anyhow!("no container"))?;
            (c.argv.clone(), c.env.clone(), c.workdir.clone())
        };
        self.start_container(uid, name, argv, env, wd)
    }

    /// The `containerStatuses` entry of a container, `None` if never started.
    pub fn status(&self, uid: &str, name: &str, ready_probe: bool) -> Option<Value> {
        let pods = self.lock();
        let c = pods.get(uid)?.containers.get(name)?;
        let last = c.last.as_ref().map(|(code, start, end)| {
            json!({"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" }, "startedAt": start, "finishedAt": end}})
        });
        let (state, ready, started) = if c.child.is_some() {
            (
                json!({"running": {"startedAt": c.started_at}}),
                ready_probe,
                true,
            )
        } else if c.done {
            (last.clone().unwrap_or(json!({})), false, false)
        } else {
            (
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {name}")}}),
                false,
                false,
            )
        };
        let mut s = json!({"name": name, "state": state, "ready": ready, "started": started, "restartCount": c.restarts, "containerID": format!("sim://{uid}-{name}"), "imageID": ""});
        if c.child.is_some() || !c.done {
            if let Some(l) = last {
                s["lastState"] = l;
            }
        } else {
            s["lastState"] = json!({});
        }
        Some(s)
    }

    /// Pid of the pod's namespace holder and a container's env, for exec.
    pub fn exec_target(&self, uid: &str, container: &str) -> Option<(u32, Vec<(String, String)>)> {
        let pods = self.lock();
        let p = pods.get(uid)?;
        let env = p
            .containers
            .get(container)
            .map(|c| c.env.clone())
            .unwrap_or_default();
        Some((p.ns_pid, env))
    }

    /// The readiness of a container with an exec readiness probe: the last result of its
    /// probe worker, started on the first call. As the kubelet's prober
    /// (pkg/kubelet/prober/worker.go), each container's probe runs on its own ticker, never in
    /// the pod sync: it runs every `period` from when the worker starts (the container's
    /// start), skips probing until `initial_delay` after the container started (`doProbe`:
    /// "Probe disabled for InitialDelaySeconds"), counts a probe that outlives `timeout` as
    /// failed, and starts from a failure for each new container (`initialValue`). A changed
    /// result is reported at once (the kubelet's sync loop takes readiness updates as they
    /// come and its status manager writes the pod's status), through [`Kubelet::wake`].
    /// The worker starts with the container, so the first probe after the delay comes right at
    /// it; a real kubelet starts its worker when it first syncs the pod, a little before the
    /// container starts, so there the first probe lands between the delay and one period later.
    pub fn readiness(&self, uid: &str, container: &str, spec: &ProbeSpec) -> bool {
        let key = format!("{uid}/{container}");
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = probes.get(&key) {
            return p.ready;
        }
        if self.stopped.load(Ordering::SeqCst) || !self.running(uid) {
            return false;
        }
        let (stop, stopped_rx) = mpsc::channel();
        probes.insert(
            key.clone(),
            Probe {
                ready: false,
                _stop: stop,
            },
        );
        let worker = ProbeWorker {
            key,
            uid: uid.to_string(),
            container: container.to_string(),
            spec: spec.clone(),
            pods: self.pods.clone(),
            probes: self.probes.clone(),
            wake: self.wake.clone(),
            stopped: self.stopped.clone(),
        };
        std::thread::spawn(move || worker.run(stopped_rx));
        false
    }

    /// Pid of a running container.
    pub fn container_pid(&self, uid: &str, container: &str) -> Option<u32> {
        self.lock().get(uid)?.containers.get(container)?.pid
    }

    /// Kills one container's process (fault injection: the kubelet restarts it per policy).
    pub fn kill_container(&self, uid: &str, container: &str) -> bool {
        match self.container_pid(uid, container) {
            Some(pid) => {
                kill_group(pid, "KILL");
                true
            }
            None => false,
        }
    }

    /// Sends SIGTERM to every container of a pod.
    pub fn terminate(&self, uid: &str) {
        if let Some(p) = self.lock().get(uid) {
            for c in p.containers.values() {
                if let Some(pid) = c.pid {
                    kill_group(pid, "TERM");
                }
            }
        }
    }

    /// Whether every container of a pod has exited.
    pub fn all_exited(&self, uid: &str) -> bool {
        self.poll(uid);
        self.lock()
            .get(uid)
            .is_none_or(|p| p.containers.values().all(|c| c.child.is_none()))
    }

    /// Kills a pod's processes and forgets it (its probe workers stop).
    pub fn stop_pod(&self, uid: &str) {
        let prefix = format!("{uid}/");
        self.probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
        if let Some(mut p) = self.lock().remove(uid) {
            // Exec sessions and daemonised children live in the pod's mount namespace too.
            kill_namespace(p.ns_pid);
            for c in p.containers.values_mut() {
                if let Some(pid) = c.pid {
                    kill_group(pid, "KILL");
                }
                if let Some(child) = c.child.as_mut() {
                    let _ = child.start_kill();
                }
            }
            if let Some(pid) = p.sandbox.id() {
                kill_group(pid, "KILL");
            }
            let _ = p.sandbox.start_kill();
        }
    }

    /// Uids of the pods with a sandbox.
    pub fn pod_uids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Kills everything and refuses to start anything again (shutdown).
    pub fn kill_all(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for uid in self.pod_uids() {
            self.stop_pod(&uid);
        }
    }

    /// The log file of a container.
    pub fn log_path(&self, ns: &str, name: &str, uid: &str, container: &str) -> PathBuf {
        self.pod_dir(ns, name, uid)
            .join("logs")
            .join(format!("{container}.log"))
    }

    /// Whether a path exists inside a pod's mount namespace.
    pub fn exists_in_pod(&self, uid: &str, path: &str) -> bool {
        let Some(pid) = self.lock().get(uid).map(|p| p.ns_pid) else {
            return false;
        };
        Path::new(&format!("/proc/{pid}/root{path}")).exists()
    }
}

/// One container's readiness probe on its own thread (pkg/kubelet/prober/worker.go `run`).
struct ProbeWorker {
    key: String,
    uid: String,
    container: String,
    spec: ProbeSpec,
    pods: Pods,
    probes: Probes,
    wake: Arc<tokio::sync::Notify>,
    stopped: Arc<AtomicBool>,
}

impl ProbeWorker {
    fn run(self, stop: mpsc::Receiver<()>) {
        let period = self.spec.period.max(Duration::from_secs(1));
        let mut tick = Instant::now();
        // The container (by its restart count) the last result is about.
        let mut seen: Option<u32> = None;
        loop {
            if self.stopped.load(Ordering::SeqCst) {
                return;
            }
            let target = {
                let pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
                let Some(pod) = pods.get(&self.uid) else {
                    return;
                };
                pod.containers.get(&self.container).map(|c| {
                    (
                        pod.ns_pid,
                        c.env.clone(),
                        c.child.is_some(),
                        c.started,
                        c.restarts,
                    )
                })
            };
            if let Some((pid, env, running, started, run)) = target {
                // A new container starts from a failure until its probe passes.
                if seen != Some(run) {
                    seen = Some(run);
                    self.record(false);
                }
                if !running {
                    self.record(false);
                } else if started.elapsed() >= self.spec.initial_delay {
                    let ok = probe_once(pid, env, &self.spec.argv, self.spec.timeout);
                    self.record(ok);
                }
            }
            tick += period;
            match stop.recv_timeout(tick.saturating_duration_since(Instant::now())) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    /// Stores a result; a change wakes the node's sync. Gone when the pod was stopped.
    fn record(&self, ready: bool) {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = probes.get_mut(&self.key)
            && p.ready != ready
        {
            p.ready = ready;
            self.wake.notify_one();
        }
    }
}

/// Runs an exec probe command in a pod's namespaces: passed when it exits 0 within `timeout`.
fn probe_once(pid: u32, env: Vec<(String, String)>, argv: &[String], timeout: Duration) -> bool {
    let started = Instant::now();
    let spawned = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-n", "-p", "--"])
        .args(argv)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        return false;
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
