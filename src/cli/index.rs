//! `tendero reindex` (the search index brought in line with the database) and
//! `tendero eval` (search quality on judged queries).

use std::path::PathBuf;

use anyhow::Context;

use super::progress::TerminalProgress;
use crate::config::Settings;
use crate::learning::clicks::simulate::{self, SimulationConfig};
use crate::retrieval;
use crate::retrieval::eval::{EvalConfig, Split};
use crate::retrieval::fusion::Fusion;

/// `tendero eval DIR` scores search; `tendero eval recomendaciones FILE` scores the
/// recommendation models.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub of: Option<EvalOf>,
    /// Folder with products.csv, queries.csv and judgments.csv.
    #[arg(required = true)]
    pub dir: Option<PathBuf>,
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
    /// Evaluate one fixed half of the queries: `tune` (to choose settings on) or
    /// `test` (to report the chosen settings on).
    #[arg(long)]
    pub split: Option<String>,
    /// Instead of the modes, simulate N sessions per query of customers clicking on
    /// the hybrid ranking and score what the click learning makes of them
    /// (docs/search.md); the learning's settings are the TENDERO_CLICKS_* ones.
    #[arg(long, value_name = "N")]
    pub clics: Option<usize>,
    /// The simulated customers' random seed.
    #[arg(long, default_value_t = 1)]
    pub semilla: u64,
}

pub(super) async fn reindex(settings: &Settings) -> anyhow::Result<()> {
    let db = super::connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let embedder = retrieval::embedders::resolve(&settings.retrieval, &settings.ollama).await?;
    let index = retrieval::open_index(&settings.retrieval, embedder, false).await?;
    let report = retrieval::sync::sync_all(&db, &index).await?;
    index.save().await?;
    println!(
        "index in line with the database: {} embedded, {} restamped, {} removed, {} unchanged",
        report.embedded, report.restamped, report.removed, report.unchanged
    );
    Ok(())
}

/// What else `tendero eval` scores.
#[derive(Debug, clap::Subcommand)]
pub enum EvalOf {
    /// The recommendation models on an orders file (docs/recommendations.md).
    Recomendaciones(super::recommend::RecommendEvalArgs),
}

pub(super) async fn eval(args: EvalArgs, settings: &Settings) -> anyhow::Result<()> {
    let Some(dir) = args.dir else {
        return match args.of {
            Some(EvalOf::Recomendaciones(of)) => {
                super::recommend::eval(of, &settings.recommend).await
            }
            None => anyhow::bail!("give the folder of judged queries, or `recomendaciones FILE`"),
        };
    };
    let fusion = match args.fusion.as_deref() {
        Some(raw) => Fusion::parse(raw).with_context(|| {
            format!("--fusion {raw}: use convex, convex:0.6, tmm, tmm:0.6, rrf or rrf:60")
        })?,
        None => Fusion::DEFAULT,
    };
    let split = match args.split.as_deref() {
        Some(raw) => {
            Some(Split::parse(raw).with_context(|| format!("--split {raw}: use tune or test"))?)
        }
        None => None,
    };
    let config = EvalConfig {
        dir,
        store_dir: args.store,
        language: args
            .idioma
            .unwrap_or_else(|| settings.retrieval.search_language.clone()),
        fusion,
        hnsw_from: settings.retrieval.faiss_hnsw_from,
        ef_search: settings.retrieval.faiss_hnsw_ef_search,
        limit: args.limit,
        split,
    };
    let embedder = retrieval::embedders::resolve(&settings.retrieval, &settings.ollama).await?;
    if let Some(sessions) = args.clics {
        let progress = TerminalProgress::default();
        let prepared = retrieval::eval::prepare(&config, embedder.clone(), &progress).await?;
        let simulation = SimulationConfig {
            sessions,
            checkpoints: [0, 1, 2, 5, 10, 20, 50, 100]
                .into_iter()
                .filter(|n| *n < sessions)
                .chain([sessions])
                .collect(),
            seed: args.semilla,
            settings: settings.learning.clone(),
        };
        let report = simulate::run(&prepared, &simulation, embedder.id(), &progress).await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.table());
        }
        return Ok(());
    }
    let report = retrieval::eval::run(&config, embedder, &TerminalProgress::default()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
