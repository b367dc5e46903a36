//! The `tendero` command line: `serve` (the default), `migrate`, `user create`,
//! `export`, `reindex` and `eval`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use rand::RngCore;

use crate::app::{self, AppState};
use crate::auth::Role;
use crate::catalog;
use crate::catalog::progress::TerminalProgress;
use crate::config::Settings;
use crate::db::Db;
use crate::export::files::PendingFile;
use crate::export::{self, ExportQuery, ExportRequest, Outcome, Sink};
use crate::retrieval;
use crate::retrieval::eval::EvalConfig;
use crate::retrieval::fusion::Fusion;
use crate::shop::pedidos::Estado;
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
    /// Write a report to a file (for scheduled jobs), as `GET /api/exportar/…` would.
    Export(ExportArgs),
    /// Bring the search index in line with the database (re-embedding what changed).
    Reindex,
    /// Measure search quality on judged queries (products.csv, queries.csv,
    /// judgments.csv in DIR): NDCG@10, MRR@10, Recall@100 and latency per mode.
    Eval(EvalArgs),
    /// Transcribe recordings with the configured Whisper model (TENDERO_WHISPER_MODEL),
    /// reporting decoding and transcription speed: to check that a model works.
    /// Without a model only decoding is measured.
    Transcribe(TranscribeArgs),
}

#[derive(Debug, clap::Args)]
pub struct TranscribeArgs {
    /// Recordings: WAV, MP3, OGG Vorbis or FLAC.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Decode (and transcribe) each file this many times; the figures are the median.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Folder with products.csv, queries.csv and judgments.csv.
    pub dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the indexed products in this folder and reuse them on the next run
    /// (a temporary folder otherwise).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Full-text language of the products (Spanish, English, …); defaults to
    /// TENDERO_SEARCH_LANGUAGE.
    #[arg(long)]
    pub idioma: Option<String>,
    /// Hybrid fusion: `convex[:bm25_weight]`, `tmm[:bm25_weight]` or `rrf[:k]`.
    #[arg(long)]
    pub fusion: Option<String>,
    /// Evaluate only the first N queries.
    #[arg(long)]
    pub limit: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// clientes, productos or pedidos.
    pub entidad: String,
    /// csv, json or jsonl.
    #[arg(long, default_value = "csv")]
    pub formato: String,
    /// Created at or after (AAAA-MM-DD or RFC 3339).
    #[arg(long)]
    pub desde: Option<String>,
    /// Created at or before (AAAA-MM-DD, the whole day, or RFC 3339).
    #[arg(long)]
    pub hasta: Option<String>,
    /// Orders in this state.
    #[arg(long)]
    pub estado: Option<String>,
    #[arg(long)]
    pub cliente_id: Option<i64>,
    #[arg(long)]
    pub categoria: Option<String>,
    #[arg(long)]
    pub activo: Option<bool>,
    /// Comma-separated columns, in order.
    #[arg(long)]
    pub columnas: Option<String>,
    /// `lineas`: one row per order line.
    #[arg(long)]
    pub detalle: Option<String>,
    /// CSV for Excel in Spanish locales (BOM, `;`, decimal comma).
    #[arg(long)]
    pub excel: bool,
    /// The file to write (written under a temporary name, then renamed).
    #[arg(long)]
    pub salida: PathBuf,
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
        Command::Export(args) => export(args, &settings).await,
        Command::Reindex => reindex(&settings).await,
        Command::Eval(args) => eval(args, &settings).await,
        Command::Transcribe(args) => {
            tokio::task::spawn_blocking(move || transcribe(&args, &settings))
                .await
                .context("the transcription task failed")?
        }
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

async fn export(args: ExportArgs, settings: &Settings) -> anyhow::Result<()> {
    let estado = match args.estado.as_deref() {
        Some(raw) => Some(Estado::parse(raw).with_context(|| {
            format!("--estado {raw}: use pendiente, confirmado, enviado, entregado o cancelado")
        })?),
        None => None,
    };
    let query = ExportQuery {
        formato: Some(args.formato),
        desde: args.desde,
        hasta: args.hasta,
        estado,
        cliente_id: args.cliente_id,
        categoria: args.categoria,
        activo: args.activo,
        columnas: args.columnas,
        detalle: args.detalle,
        excel: Some(args.excel),
        guardar: None,
    };
    let request =
        ExportRequest::parse(&args.entidad, query).map_err(|err| anyhow::anyhow!("{err}"))?;
    let db = connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let started = std::time::Instant::now();
    export::check_size(&db, &request, settings.export_max_rows)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let file = PendingFile::create_at(&args.salida)
        .await
        .with_context(|| format!("creating {}", args.salida.display()))?;
    match export::run(&db, &request, Sink::new(None, Some(file))).await? {
        Outcome::Completed { rows, .. } => {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "exported {rows} rows to {} in {seconds:.2} s ({:.0} rows/s)",
                args.salida.display(),
                rows as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
        Outcome::Cancelled { .. } => anyhow::bail!("the export stopped before the end"),
    }
}

async fn reindex(settings: &Settings) -> anyhow::Result<()> {
    let db = connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let embedder = retrieval::embedders::resolve(settings).await?;
    let index = retrieval::open_index(settings, embedder, false).await?;
    let report = catalog::sync::sync_all(&db, &index).await?;
    index.save().await?;
    println!(
        "index in line with the database: {} embedded, {} restamped, {} removed, {} unchanged",
        report.embedded, report.restamped, report.removed, report.unchanged
    );
    Ok(())
}

async fn eval(args: EvalArgs, settings: &Settings) -> anyhow::Result<()> {
    let fusion = match args.fusion.as_deref() {
        Some(raw) => Fusion::parse(raw).with_context(|| {
            format!("--fusion {raw}: use convex, convex:0.6, tmm, tmm:0.6, rrf or rrf:60")
        })?,
        None => Fusion::DEFAULT,
    };
    let config = EvalConfig {
        dir: args.dir,
        store_dir: args.store,
        language: args
            .idioma
            .unwrap_or_else(|| settings.search_language.clone()),
        fusion,
        hnsw_from: settings.faiss_hnsw_from,
        ef_search: settings.faiss_hnsw_ef_search,
        limit: args.limit,
    };
    let embedder = retrieval::embedders::resolve(settings).await?;
    let report = retrieval::eval::run(&config, embedder, &TerminalProgress::default()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn transcribe(args: &TranscribeArgs, settings: &Settings) -> anyhow::Result<()> {
    use crate::speech::audio;
    use crate::speech::whisper::Whisper;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    let whisper = match &settings.whisper_model {
        Some(path) => Some(Whisper::load(
            path,
            &settings.whisper_language,
            settings.transcription_threads(),
        )?),
        None => {
            eprintln!(
                "no Whisper model configured (TENDERO_WHISPER_MODEL): measuring decoding only"
            );
            None
        }
    };
    let never = Arc::new(AtomicBool::new(false));
    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    for file in &args.files {
        let bytes = bytes::Bytes::from(
            std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        );
        let mut decode_ms = Vec::new();
        let mut decoded = None;
        for _ in 0..args.repeat.max(1) {
            let started = Instant::now();
            let audio = audio::decode(bytes.clone(), settings.voice_max_secs)
                .with_context(|| format!("decoding {}", file.display()))?;
            decode_ms.push(started.elapsed().as_secs_f64() * 1e3);
            decoded = Some(audio);
        }
        let audio = decoded.expect("decoded at least once");
        let audio_ms = audio.seconds() * 1e3;
        let decode_ms = median(decode_ms);
        let mut report = serde_json::json!({
            "file": file.display().to_string(),
            "format": audio.format,
            "source_rate": audio.source_rate,
            "channels": audio.channels,
            "audio_ms": audio_ms,
            "decode_ms": decode_ms,
            "decode_x_realtime": audio_ms / decode_ms.max(1e-6),
        });
        if let Some(whisper) = &whisper {
            let mut times = Vec::new();
            let mut text = String::new();
            for _ in 0..args.repeat.max(1) {
                let started = Instant::now();
                let heard = whisper.transcribe(&audio.samples, &never)?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                text = heard.text;
            }
            let transcribe_ms = median(times);
            report["transcribe_ms"] = serde_json::json!(transcribe_ms);
            report["real_time_factor"] = serde_json::json!(transcribe_ms / audio_ms.max(1e-6));
            report["text"] = serde_json::json!(text);
        }
        if args.json {
            println!("{report}");
        } else {
            println!(
                "{}: {} {} Hz x{}, {:.2} s; decoded in {:.2} ms ({:.0}x real time){}",
                file.display(),
                audio.format,
                audio.source_rate,
                audio.channels,
                audio_ms / 1e3,
                decode_ms,
                audio_ms / decode_ms.max(1e-6),
                match report.get("transcribe_ms") {
                    Some(ms) => format!(
                        "; transcribed in {:.0} ms (real-time factor {:.3}): {:?}",
                        ms.as_f64().unwrap_or_default(),
                        report["real_time_factor"].as_f64().unwrap_or_default(),
                        report["text"].as_str().unwrap_or_default()
                    ),
                    None => String::new(),
                }
            );
        }
    }
    Ok(())
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
    release_freed_memory();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} (TENDERO_ADDR)"))?;
    tracing::info!(addr = %listener.local_addr()?, "Tendero listening");
    app::run(listener, state, app::shutdown_signal()).await
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
