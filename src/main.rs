use std::process::ExitCode;

/// mimalloc: less time in the allocator than glibc's under many small, short-lived
/// allocations across threads (measured in benches/load.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use tendero::cli::{self, Cli, Command};
use tendero::config::Settings;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // A training of the recommendation models still running on a blocking thread is
    // abandoned rather than waited for (it stores nothing until it ends, so the stored
    // generation stays as it was): a stop must not wait minutes for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run() -> ExitCode {
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
