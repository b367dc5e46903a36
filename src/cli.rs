//! The `tendero` command line: `serve` (the default), `migrate`, `user create`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rand::RngCore;

use crate::app::{self, AppState};
use crate::auth::Role;
use crate::config::Settings;
use crate::db::Db;
use crate::shop::usuarios;

#[derive(Debug, Parser)]
#[command(
    name = "tendero",
    version,
    about = "Conversational sales agent server for shops"
)]
pub struct Cli {
    /// Configuration file (TOML); `TENDERO_*` environment variables override it.
    #[arg(long, short, env = "TENDERO_CONFIG", default_value = "tendero.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage staff users.
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a staff user; prints a generated password unless one comes on stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Vendedor)]
        role: RoleArg,
        /// Display name (defaults to the part of the email before @).
        #[arg(long)]
        nombre: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Vendedor,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Vendedor => Role::Vendedor,
        }
    }
}

/// Runs one command with loaded settings.
pub async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let db = connect(&settings).await?;
            db.migrate().await.context("applying migrations")?;
            println!(
                "migrations applied to {}",
                app::redact_url(&settings.database_url())
            );
            Ok(())
        }
        Command::User {
            action:
                UserCommand::Create {
                    email,
                    role,
                    nombre,
                    password_stdin,
                },
        } => {
            let db = connect(&settings).await?;
            db.migrate().await.context("applying migrations")?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (random_password(), true)
            };
            let nombre = nombre.unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
            let user = usuarios::create(&db, &email, &nombre, role.into(), &password)
                .await
                .map_err(|err| anyhow::anyhow!("creating user {email}: {err}"))?;
            println!("created {} user {} (id {})", user.rol, user.email, user.id);
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
    }
}

async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let url = settings.database_url();
    Db::connect(&url, 2)
        .await
        .with_context(|| format!("connecting to {}", app::redact_url(&url)))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let addr = settings.addr;
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (TENDERO_ADDR)"))?;
    tracing::info!(addr = %listener.local_addr()?, "Tendero listening");
    app::run(listener, state, app::shutdown_signal()).await
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
