//! `panoptes`: see `panoptes --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match panoptes_launcher::cli::Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("panoptes: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
