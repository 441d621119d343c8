//! `rehearse NAME [--kill] [--keep DIR]`: runs the rehearsal `tests/rehearsals/NAME.yaml` on a
//! fresh simulated cluster with the plugins built next to this binary, printing each step and
//! its outcome. Exit 0 when it passed, 1 when a step failed or the data changed, 2 when it
//! could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use upgrade_e2e::rehearsal;

/// Rehearse one seed's upgrade on a fresh simulated cluster.
#[derive(Parser, Debug)]
#[command(name = "rehearse", version)]
struct Args {
    /// The rehearsal (a file name in tests/rehearsals without `.yaml`); `--list` shows them.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// Kill the plugin of the rehearsal's kill step once it has journaled, then run it again.
    #[arg(long)]
    kill: bool,
    /// Keep the working directory (kubeconfig, cluster data, files the steps wrote) here.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// List the rehearsals and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for name in rehearsal::names() {
            match rehearsal::load(&name) {
                Ok(d) => println!("{name:<16} {}", d.title),
                Err(e) => println!("{name:<16} (does not load: {e:#})"),
            }
        }
        return ExitCode::SUCCESS;
    }
    let name = args.name.unwrap_or_default();
    let def = match rehearsal::load(&name) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let Some(plugins_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
    else {
        eprintln!("error: cannot tell where this binary is, so where the plugins are");
        return ExitCode::from(2);
    };
    let mut opts = rehearsal::Options::new(plugins_dir);
    opts.kill = args.kill;
    opts.keep = args.keep;
    let mut out = std::io::stdout();
    match rehearsal::rehearse(&def, &opts, &mut out) {
        Ok(report) if report.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: rehearsal {name} could not run: {e:#}");
            ExitCode::from(2)
        }
    }
}
