//! `kubectl upgrade-restart`: parse the arguments, run, map the result to an exit code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Some(code) = upgrade_shared::completion::handle::<kubectl_upgrade_restart::Args>() {
        return code;
    }
    let args = kubectl_upgrade_restart::Args::parse();
    match kubectl_upgrade_restart::run(args).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => upgrade_shared::exit::report_error(&err),
    }
}
