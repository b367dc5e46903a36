//! `tendero entrenar` (the recommendation models trained from the shop's orders and
//! stored for every node) and `tendero eval recomendaciones FILE` (the models scored
//! offline, with the temporal protocol on an orders file or leave-one-out on sequences).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;

use crate::config::RecommendSettings;
use crate::recommend::eval::{self, Row};
use crate::recommend::models::ModelSettings;
use crate::recommend::orders_file;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Protocol {
    /// Train on the first 80% of orders, score the last 20% (an orders file).
    Temporal,
    /// Each customer's last product is the target (`user item` lines, or an orders
    /// file turned into sequences).
    LeaveOneOut,
}

#[derive(Debug, clap::Args)]
pub struct RecommendEvalArgs {
    /// An orders file (Online Retail layout, `.csv` or `.csv.gz`) or, for
    /// leave-one-out, `user item` lines in time order.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = Protocol::Temporal)]
    pub protocolo: Protocol,
    /// Results scored per customer.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Leave-one-out from an orders file: customers with at least this many products.
    #[arg(long, default_value_t = 5)]
    pub min_productos: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn eval(
    args: RecommendEvalArgs,
    settings: &RecommendSettings,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100).contains(&args.k), "--k must be between 1 and 100");
    let settings = crate::recommend::model_settings(settings);
    tokio::task::spawn_blocking(move || run(&args, settings))
        .await
        .context("the evaluation task failed")?
}

/// Trains from the orders in the configured database and stores the generation; the
/// servers load it within `TENDERO_RECOMMEND_POLL_SECS`.
pub(super) async fn train(settings: &crate::config::Settings) -> anyhow::Result<()> {
    let db = super::connect(settings).await?;
    db.migrate().await.context("applying migrations")?;
    let version = crate::recommend::train::train_and_store(
        &db,
        &crate::recommend::model_settings(&settings.recommend),
    )
    .await
    .context("training the recommendation models")?;
    let stored = crate::recommend::train::load(&db, version)
        .await?
        .context("the stored generation vanished")?;
    let s = &stored.summary;
    println!(
        "recommendation models version {version} stored: {} orders, {} lines, {} customers, {} products, {:.1} s",
        s.orders, s.lines, s.customers, s.products, s.seconds
    );
    Ok(())
}

fn is_orders_file(path: &std::path::Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

fn run(args: &RecommendEvalArgs, mut settings: ModelSettings) -> anyhow::Result<()> {
    match args.protocolo {
        Protocol::Temporal => {
            anyhow::ensure!(
                is_orders_file(&args.file),
                "{}: the temporal protocol reads an orders file (.csv or .csv.gz)",
                args.file.display()
            );
            let purchases = orders_file::read_orders(&args.file)?;
            anyhow::ensure!(
                !purchases.is_empty(),
                "{}: no purchase lines kept",
                args.file.display()
            );
            let report = eval::temporal(&purchases, &settings, args.k)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let mut out = format!(
                    "temporal protocol: {} products, {} training lines, test from {}; models trained in {:.1} s\n",
                    report.products,
                    report.training_lines,
                    report.test_from,
                    report.training_seconds
                );
                table(&mut out, "all products", args.k, &report.all);
                table(
                    &mut out,
                    "products new to the customer",
                    args.k,
                    &report.new,
                );
                print!("{out}");
            }
        }
        Protocol::LeaveOneOut => {
            let sequences = if is_orders_file(&args.file) {
                orders_file::sequences_of(
                    &orders_file::read_orders(&args.file)?,
                    args.min_productos,
                )
            } else {
                orders_file::read_sequences(&args.file)?
            };
            anyhow::ensure!(
                !sequences.is_empty(),
                "{}: no sequences",
                args.file.display()
            );
            // Sequences have steps, not dates: recency is counted in steps (a step
            // counts as a day), half-life 7 (about 0.9 per step), and popularity
            // counts every user (a window of steps means nothing across users).
            settings.half_life_days = 7.0;
            settings.popularity_days = 1_000_000;
            let report = eval::leave_one_out(&sequences, &settings, args.k)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let mut out = format!(
                    "leave-one-out: {} users, {} items; models trained in {:.1} s\n",
                    report.users, report.items, report.training_seconds
                );
                table(&mut out, "last item of each user", args.k, &report.rows);
                print!("{out}");
            }
        }
    }
    Ok(())
}

fn table(out: &mut String, title: &str, k: usize, rows: &[Row]) {
    let customers = rows.first().map_or(0, |r| r.metrics.customers);
    let _ = writeln!(out, "\n{title} ({customers} customers)");
    let _ = writeln!(
        out,
        "| model | NDCG@{k} | P@{k} | R@{k} | Hit@{k} | coverage |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for row in rows {
        let m = &row.metrics;
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} |",
            row.model, m.ndcg, m.precision, m.recall, m.hit_rate, m.coverage
        );
    }
}
