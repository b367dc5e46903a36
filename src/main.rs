use std::process::ExitCode;

/// mimalloc: less time in the allocator than glibc's under many small, short-lived
/// allocations across threads (measured in benches/load.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use tendero::cli::{self, Cli, Command};
use tendero::config::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::args(std::env::args_os().collect()));
    let settings = match Settings::load(&cli.config) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    tendero::telemetry::init(&settings.server);
    match cli::execute(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "tendero stopped");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
