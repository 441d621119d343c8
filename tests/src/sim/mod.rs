//! A simulated Kubernetes cluster: an API server speaking the real wire protocol, the
//! controllers this suite relies on, and pods that run as local processes on real directories.

mod api;
mod apply;
pub mod controllers;
mod defaults;
mod discovery;
pub mod errors;
mod exec;
pub mod faults;
mod http;
pub mod kubelet;
pub mod meta;
mod mysql;
mod patch;
mod pods;
mod proto;
mod proto_workloads;
pub mod resources;
pub mod scenario;
pub mod selectors;
pub mod store;
mod table;
mod validation;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::{FaultRule, Faults};
pub use store::Store;

/// How the cluster starts.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Where volumes, pod logs and pod state live.
    pub data_dir: PathBuf,
    /// Scenario files to seed (see tests/README.md).
    pub scenarios: Vec<PathBuf>,
}

/// State shared by the server, the controllers and the kubelet.
pub struct Shared {
    /// All objects.
    pub store: Store,
    /// Injected faults.
    pub faults: Faults,
    /// Root of volumes and pod state.
    pub data_dir: PathBuf,
    /// Running pods.
    pub kubelet: kubelet::Kubelet,
    /// How often the volume binder resyncs (real clusters: 15 s).
    pub binder_resync: Duration,
    /// What the operator stand-ins remember between passes.
    pub operators: controllers::operators::Memory,
}

/// A running simulated cluster.
pub struct SimCluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

/// The name of the node every pod runs on.
pub const NODE: &str = "sim-node";

/// The volume binder's resync period: `SIM_BINDER_RESYNC_MS`, else 1 s (a real
/// controller-manager uses 15 s; set 15000 to rehearse with real timing).
fn binder_resync() -> Duration {
    let ms = std::env::var("SIM_BINDER_RESYNC_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    Duration::from_millis(ms)
}

fn seed(store: &Store) -> anyhow::Result<()> {
    let ns = resources::builtin("", "namespaces").context("namespaces")?;
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        store
            .create(&ns, "", json!({"metadata": {"name": name}}), false)
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let node = resources::builtin("", "nodes").context("nodes")?;
    store
        .create(
            &node,
            "",
            json!({
                "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/control-plane": ""}},
                "spec": {},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                    "nodeInfo": {"kubeletVersion": discovery::GIT_VERSION, "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "sim://1"},
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE}],
                    "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                    "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
                }
            }),
            false,
        )
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}

impl SimCluster {
    /// Starts the API server on 127.0.0.1 (random port), the controllers and the kubelet, and
    /// loads the scenarios.
    pub async fn start(opts: SimOptions) -> anyhow::Result<SimCluster> {
        std::fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("creating {}", opts.data_dir.display()))?;
        let data_dir = opts.data_dir.canonicalize()?;
        let shared = Arc::new(Shared {
            store: Store::new(),
            faults: Faults::default(),
            kubelet: kubelet::Kubelet::new(data_dir.join("pods")),
            data_dir,
            binder_resync: binder_resync(),
            operators: Default::default(),
        });
        seed(&shared.store)?;
        for path in &opts.scenarios {
            scenario::load(&shared, path)
                .with_context(|| format!("loading scenario {}", path.display()))?;
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let mut tasks = controllers::spawn(shared.clone());
        let server_shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // kube-apiserver is written in Go, whose net package turns Nagle's algorithm off
                // on every TCP connection (TCPConn.SetNoDelay: "The default is true"), so small
                // frames of an exec or watch stream go out at once instead of waiting for the
                // peer's delayed ACK.
                let _ = stream.set_nodelay(true);
                let s = server_shared.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| http::handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        }));
        Ok(SimCluster {
            shared,
            addr,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The store, for tests that look inside or seed directly.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The fault injector.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The kubelet (kill a container's process).
    pub fn kubelet(&self) -> &kubelet::Kubelet {
        &self.shared.kubelet
    }

    /// Writes a kubeconfig with context, cluster and user `sim` and namespace `default`.
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        SimKubeconfig { url: self.url() }.write(path)
    }

    /// Stops the server and the controllers and kills every pod process.
    pub async fn shutdown(mut self) {
        self.stop();
        let tasks = std::mem::take(&mut self.tasks);
        for t in tasks {
            let _ = t.await;
        }
    }

    fn stop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shared.kubelet.kill_all();
    }

    /// Runs a cluster on its own runtime thread, for plain `#[test]` functions.
    pub fn spawn_blocking(opts: SimOptions) -> anyhow::Result<SimGuard> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::anyhow!(e)));
                    return;
                }
            };
            rt.block_on(async move {
                match SimCluster::start(opts).await {
                    Ok(c) => {
                        let _ = tx.send(Ok((c.url(), c.shared.clone())));
                        let _ = stop_rx.await;
                        c.shutdown().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let (url, shared) = rx.recv().context("cluster thread ended")??;
        Ok(SimGuard {
            url,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A cluster running on its own thread; dropping it shuts the cluster down.
pub struct SimGuard {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimGuard {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The fault injector.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The kubelet.
    pub fn kubelet(&self) -> &kubelet::Kubelet {
        &self.shared.kubelet
    }

    /// Writes the kubeconfig (see [`SimCluster::write_kubeconfig`]).
    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        SimKubeconfig {
            url: self.url.clone(),
        }
        .write(path)
    }
}

struct SimKubeconfig {
    url: String,
}

impl SimKubeconfig {
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n    namespace: default\ncurrent-context: sim\nusers:\n- name: sim\n  user: {{}}\npreferences: {{}}\n",
            self.url
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

impl Drop for SimGuard {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.kubelet.kill_all();
    }
}
