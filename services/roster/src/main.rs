//! `roster`: the whole suite in one process on SQLite files (the embedded default), and
//! the developer commands around it.

mod dev_token;
mod import_users;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Roster: user management for B2B customer support"
)]
struct Cli {
    /// Where SQLite files and development key-encryption keys live.
    #[arg(long, env = "ROSTER_DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service locally (the default): directory on 127.0.0.1:50051, staff on
    /// 127.0.0.1:50052, audit on 127.0.0.1:50053.
    Serve,
    /// Print an access token signed with the staff service's signing key, for grpcurl.
    DevToken(dev_token::Args),
    /// Stream a CSV file of end-users through ImportUsers and print the result.
    ImportUsers(import_users::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(&cli.data_dir).await,
        Command::DevToken(args) => dev_token::run(&cli.data_dir, &args).await,
        Command::ImportUsers(args) => import_users::run(&cli.data_dir, args).await,
    }
}
