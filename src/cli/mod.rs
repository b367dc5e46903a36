//! The `tendero` command line: `serve` (the default), `migrate`, `user create`,
//! `ingest`, `export`, `reindex`, `entrenar`, `eval` (search, and `eval
//! recomendaciones`) and `transcribe`.

mod index;
mod ingest;
mod progress;
mod recommend;
mod reports;
mod transcribe;

use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rand::RngCore;

use crate::auth::{Role, users};
use crate::config::{Settings, redact_url};
use crate::db::Db;
use crate::server::{self, Services};

pub use index::EvalArgs;
pub use ingest::IngestCommand;
pub use progress::TerminalProgress;
pub use reports::ExportArgs;
pub use transcribe::TranscribeArgs;

/// The name that runs `tendero ingest` directly (a link to the binary).
const INGEST_ALIAS: &str = "tendero-ingest";

#[derive(Debug, Parser)]
#[command(
    name = "tendero",
    version,
    propagate_version = true,
    about = "Conversational sales agent server for shops"
)]
pub struct Cli {
    /// Configuration file (TOML); `TENDERO_*` environment variables override it.
    #[arg(
        long,
        short,
        global = true,
        env = "TENDERO_CONFIG",
        default_value = "tendero.toml"
    )]
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
    /// Load products and shop documents into the database and the search index
    /// (also run as `tendero-ingest`).
    Ingest {
        #[command(subcommand)]
        source: IngestCommand,
    },
    /// Write a report to a file (for scheduled jobs), as `GET /api/exportar/…` would.
    Export(ExportArgs),
    /// Bring the search index in line with the database (re-embedding what changed).
    Reindex,
    /// Train the recommendation models from the orders now and store them (every
    /// server loads them within TENDERO_RECOMMEND_POLL_SECS).
    Entrenar,
    /// Learn from the searches and clicks of the event log now and store what was
    /// learned (every server serves it within TENDERO_LEARNING_POLL_SECS).
    Aprender {
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure search quality on judged queries (products.csv, queries.csv,
    /// judgments.csv in DIR): NDCG@10, MRR@10, Recall@100 and latency per mode; or,
    /// with `recomendaciones FILE`, the recommendation models on an orders file.
    Eval(EvalArgs),
    /// Transcribe recordings with the configured Whisper model (TENDERO_WHISPER_MODEL),
    /// reporting decoding and transcription speed: to check that a model works.
    /// Without a model only decoding is measured.
    Transcribe(TranscribeArgs),
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

/// The command line as `tendero` reads it: invoked as `tendero-ingest ARGS`, it is
/// `tendero ingest ARGS`.
pub fn args(mut raw: Vec<OsString>) -> Vec<OsString> {
    let invoked_as = raw
        .first()
        .and_then(|name| Path::new(name).file_stem())
        .and_then(|stem| stem.to_str());
    if invoked_as == Some(INGEST_ALIAS) {
        raw.insert(1, OsString::from("ingest"));
    }
    raw
}

/// Runs one command with loaded settings.
pub async fn execute(command: Command, settings: Settings) -> anyhow::Result<()> {
    let settings = settings.resolve();
    match command {
        Command::Serve => serve(settings).await,
        Command::Ingest { source } => ingest::run(source, &settings).await,
        Command::Export(args) => reports::export(args, &settings).await,
        Command::Reindex => index::reindex(&settings).await,
        Command::Entrenar => recommend::train(&settings).await,
        Command::Aprender { json } => learn(&settings, json).await,
        Command::Eval(args) => index::eval(args, &settings).await,
        Command::Transcribe(args) => {
            tokio::task::spawn_blocking(move || transcribe::transcribe(&args, &settings.speech))
                .await
                .context("the transcription task failed")?
        }
        Command::Migrate => {
            let db = connect(&settings).await?;
            db.migrate().await.context("applying migrations")?;
            println!(
                "migrations applied to {}",
                redact_url(settings.database.url())
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
            let user = users::create(&db, &email, &nombre, role.into(), &password)
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

/// A small pool on the configured database, for a command that runs and exits.
async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let url = settings.database.url();
    Db::connect(url, 2)
        .await
        .with_context(|| format!("connecting to {}", redact_url(url)))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let addr = settings.server.addr;
    let services = Services::build(settings).await?;
    release_freed_memory();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (TENDERO_ADDR)"))?;
    tracing::info!(addr = %listener.local_addr()?, "Tendero listening");
    server::run(listener, services, server::shutdown_signal()).await
}

/// Returns to the system the pages start-up allocated and freed (loading the search
/// index reads the whole chunk table). Both allocators keep freed pages for reuse:
/// mimalloc, the server's, returns them only as its threads go on allocating, which
/// an idle server does not; the C library's, which FAISS and SQLite use, only from
/// the top of each of its heaps.
fn release_freed_memory() {
    // mimalloc's, linked in with the allocator.
    use mimalloc as _;
    unsafe extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: both may run at any time, on any thread; they only return free pages.
    unsafe {
        mi_collect(true);
        libc::malloc_trim(0);
    }
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

/// `tendero aprender`: the click learning now, with the embedder searches use (its
/// queries' vectors let new queries borrow from them).
async fn learn(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let embedder =
        crate::retrieval::embedders::resolve(&settings.retrieval, &settings.ollama).await?;
    let version = crate::learning::clicks::learn_and_store(&db, Some(embedder), &settings.learning)
        .await
        .context("learning from clicks")?;
    let summary = crate::learning::clicks::summary(&db, version)
        .await?
        .context("the stored generation vanished")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "click learning version {version} stored: {} searches, {} clicks counted of {} sent, {} queries learned, {:.1} s",
            summary.busquedas,
            summary.clics_contados,
            summary.clics_recibidos,
            summary.consultas,
            summary.segundos
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_alias_runs_the_ingest_command() {
        let as_alias = args(vec!["/usr/local/bin/tendero-ingest".into(), "docs".into()]);
        assert_eq!(
            as_alias,
            ["/usr/local/bin/tendero-ingest", "ingest", "docs"]
        );
        let cli = Cli::parse_from(args(vec![
            "tendero-ingest".into(),
            "productos".into(),
            "p.csv".into(),
            "--json".into(),
        ]));
        assert!(matches!(cli.command, Some(Command::Ingest { .. })));
        let plain = args(vec!["tendero".into(), "migrate".into()]);
        assert_eq!(plain, ["tendero", "migrate"]);
    }
}
