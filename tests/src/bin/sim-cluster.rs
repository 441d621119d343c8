//! `sim-cluster --kubeconfig PATH --data-dir DIR [--scenario FILE]…`: serves a simulated cluster
//! on 127.0.0.1, writes a kubeconfig for it, prints `ready`, and runs until SIGTERM or SIGINT.

use std::path::PathBuf;

use clap::Parser;
use upgrade_e2e::sim::{SimCluster, SimOptions};

/// Serve a simulated Kubernetes cluster.
#[derive(Parser, Debug)]
#[command(name = "sim-cluster", version)]
struct Args {
    /// Where to write the kubeconfig (context `sim`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Directory for volumes, pod logs and pod state.
    #[arg(long)]
    data_dir: PathBuf,
    /// Scenario files to load (repeatable).
    #[arg(long = "scenario")]
    scenarios: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sim-cluster: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let cluster = SimCluster::start(SimOptions {
        data_dir: args.data_dir,
        scenarios: args.scenarios,
    })
    .await?;
    cluster.write_kubeconfig(&args.kubeconfig)?;
    println!("ready");
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    cluster.shutdown().await;
    Ok(())
}
