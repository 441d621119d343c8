//! `kubectl upgrade-backup`: parse the arguments, run, map the result to an exit code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Some(code) = upgrade_shared::completion::handle::<kubectl_upgrade_backup::Args>() {
        return code;
    }
    let args = kubectl_upgrade_backup::Args::parse();
    match kubectl_upgrade_backup::run(args).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            upgrade_shared::exit::report_error_code(&err, kubectl_upgrade_backup::exit_code(&err))
        }
    }
}
