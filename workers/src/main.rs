//! `panoptes-worker --role <role>`: runs one pipeline role.

use clap::Parser;

#[derive(Parser)]
#[command(name = "panoptes-worker", version, about = "Panoptes pipeline worker")]
struct Args {
    #[arg(long, value_enum)]
    role: panoptes_workers::Role,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    eprintln!(
        "panoptes-worker: the {:?} role is not available yet",
        args.role
    );
    std::process::ExitCode::from(2)
}
