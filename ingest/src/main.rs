//! `tendero-ingest`: loads a shop's catalog file or documents folder into Tendero's
//! database and search index, incrementally. A running server picks the changes up
//! within its poll interval (TENDERO_INDEX_POLL_MS), without a restart.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tendero::catalog::ingest::{self, DocumentFile, IngestError, Options, Summary};
use tendero::catalog::progress::TerminalProgress;
use tendero::catalog::source::Format;
use tendero::config::Settings;
use tendero::db::Db;
use tendero::retrieval;

#[derive(Debug, Parser)]
#[command(
    name = "tendero-ingest",
    version,
    about = "Load products and shop documents into Tendero"
)]
struct Cli {
    /// Configuration file (TOML); `TENDERO_*` environment variables override it.
    #[arg(long, short, env = "TENDERO_CONFIG", default_value = "tendero.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Products from a CSV, JSON (array) or JSONL file: sku, nombre, descripcion,
    /// categoria, precio, stock, activo; other columns become attributes.
    Productos {
        file: PathBuf,
        #[command(flatten)]
        flags: Flags,
    },
    /// Shop documents (Markdown .md, plain text .txt) from a folder and its subfolders.
    Docs {
        dir: PathBuf,
        #[command(flatten)]
        flags: Flags,
    },
}

#[derive(Debug, clap::Args)]
struct Flags {
    /// Stop at the first bad row; nothing is written.
    #[arg(long)]
    strict: bool,
    /// Remove what the source no longer has.
    #[arg(long)]
    prune: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    tendero::telemetry::init(&settings);
    match run(cli.command, &settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url();
    let db = Db::connect(&url, 2)
        .await
        .with_context(|| format!("connecting to {}", tendero::app::redact_url(&url)))?;
    db.migrate().await.context("applying migrations")?;
    let embedder = retrieval::embedders::resolve(settings).await?;
    let index = retrieval::open_index(settings, embedder, false).await?;
    let progress = TerminalProgress::default();
    let (source, flags, result) = match command {
        Command::Productos { file, flags } => {
            let format = Format::from_path(&file)
                .with_context(|| format!("{}: use a .csv, .json or .jsonl file", file.display()))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let options = Options {
                strict: flags.strict,
                prune: flags.prune,
            };
            let result =
                ingest::products(&db, &index, &name, format, &text, options, &progress).await;
            (name, flags, result)
        }
        Command::Docs { dir, flags } => {
            let files = read_documents(&dir)?;
            anyhow::ensure!(
                !files.is_empty(),
                "{} holds no .md, .markdown or .txt file",
                dir.display()
            );
            let options = Options {
                strict: flags.strict,
                prune: flags.prune,
            };
            let result = ingest::documents(&db, &index, files, options, &progress).await;
            (dir.display().to_string(), flags, result)
        }
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(IngestError::Strict(row)) => anyhow::bail!("{row} (--strict: nothing was written)"),
        Err(IngestError::Other(err)) => return Err(err),
    };
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&source, &summary);
    }
    Ok(())
}

fn print_summary(source: &str, s: &Summary) {
    for error in s.errors.iter().take(100) {
        eprintln!("rechazada: {error}");
    }
    if s.errors.len() > 100 {
        eprintln!("… y {} filas rechazadas más", s.errors.len() - 100);
    }
    println!(
        "{source}: {} insertados, {} actualizados, {} sin cambios, {} eliminados, {} rechazados \
         en {:.2} s ({:.0} filas/s)",
        s.inserted, s.updated, s.unchanged, s.removed, s.rejected, s.seconds, s.rows_per_second
    );
    println!(
        "índice de búsqueda: {} embebidos, {} con datos nuevos sin re-embeber, {} quitados, \
         {} sin cambios",
        s.index.embedded, s.index.restamped, s.index.removed, s.index.unchanged
    );
}

/// Markdown and text files under `dir`, with paths relative to it, sorted.
fn read_documents(dir: &Path) -> anyhow::Result<Vec<DocumentFile>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("reading the folder {}", folder.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("md" | "markdown" | "txt")) {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {} (UTF-8 text expected)", path.display()))?;
            let ruta = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            files.push(DocumentFile { ruta, text });
        }
    }
    files.sort_by(|a, b| a.ruta.cmp(&b.ruta));
    Ok(files)
}
