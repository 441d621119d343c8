//! `kubectl upgrade-verify`: parse the arguments, run, map the result to an exit code.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    if let Some(code) = upgrade_shared::completion::handle::<kubectl_upgrade_verify::Args>() {
        return code;
    }
    let args = kubectl_upgrade_verify::Args::parse();
    match kubectl_upgrade_verify::run(args).await {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => upgrade_shared::exit::report_error(&err),
    }
}
