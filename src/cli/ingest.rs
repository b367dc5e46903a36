//! `tendero ingest`: a shop's catalog file or documents folder loaded into the
//! database and the search index, incrementally. A running server picks the changes
//! up within its poll interval (TENDERO_INDEX_POLL_MS), without a restart.
//!
//! `tendero-ingest ARGS` is the same as `tendero ingest ARGS` (a link named so, see
//! [`super::args`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use super::progress::TerminalProgress;
use crate::catalog::Catalog;
use crate::catalog::ingest::{DocumentFile, IngestError, Options, ProductFile, Summary};
use crate::catalog::source::SourceFormat;
use crate::config::Settings;
use crate::retrieval;

#[derive(Debug, Subcommand)]
pub enum IngestCommand {
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
pub struct Flags {
    /// Stop at the first bad row; nothing is written.
    #[arg(long)]
    pub strict: bool,
    /// Remove what the source no longer has.
    #[arg(long)]
    pub prune: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(command: IngestCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = super::connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let embedder = retrieval::embedders::resolve(&settings.retrieval, &settings.ollama).await?;
    let index = retrieval::open_index(&settings.retrieval, embedder, false).await?;
    let catalog = Catalog::new(db, Arc::new(index));
    let progress = TerminalProgress::default();
    let (source, flags, result) = match command {
        IngestCommand::Productos { file, flags } => {
            let format = SourceFormat::from_path(&file)
                .with_context(|| format!("{}: use a .csv, .json or .jsonl file", file.display()))?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let options = Options {
                strict: flags.strict,
                prune: flags.prune,
            };
            let source = ProductFile {
                name: &name,
                format,
                text: &text,
            };
            let result = catalog.products(source, options, &progress).await;
            (name, flags, result)
        }
        IngestCommand::Docs { dir, flags } => {
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
            let result = catalog.documents(files, options, &progress).await;
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
