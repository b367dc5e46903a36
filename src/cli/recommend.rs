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
    /// Leave the sequential model out.
    #[arg(long)]
    pub sin_secuencial: bool,
    /// The sequential model's epochs (default: TENDERO_RECOMMEND_SEQUENTIAL_EPOCHS).
    #[arg(long)]
    pub epocas: Option<usize>,
    /// Seconds its training may take (default: TENDERO_RECOMMEND_SEQUENTIAL_MAX_SECS).
    #[arg(long)]
    pub segundos_max: Option<f64>,
    /// Width of its item vectors.
    #[arg(long)]
    pub dimension: Option<usize>,
    /// Its attention blocks.
    #[arg(long)]
    pub bloques: Option<usize>,
    /// The most recent items a user's state is computed from.
    #[arg(long)]
    pub longitud: Option<usize>,
    /// Negatives drawn per sequence and step.
    #[arg(long)]
    pub negativos: Option<usize>,
    /// gBCE's calibration t (0: plain BCE).
    #[arg(long)]
    pub calibracion: Option<f32>,
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Adam's learning rate.
    #[arg(long)]
    pub tasa: Option<f64>,
    /// Sequences per training step.
    #[arg(long)]
    pub lote: Option<usize>,
}

impl RecommendEvalArgs {
    /// The sequential settings with the flags applied.
    fn sequential(&self, settings: &mut ModelSettings) {
        if self.sin_secuencial {
            settings.sequential = None;
            return;
        }
        let s = settings.sequential.get_or_insert_with(Default::default);
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut s.epochs, self.epocas);
        set(&mut s.dim, self.dimension);
        set(&mut s.blocks, self.bloques);
        set(&mut s.max_len, self.longitud);
        set(&mut s.negatives, self.negativos);
        set(&mut s.batch, self.lote);
        if let Some(v) = self.segundos_max {
            s.max_seconds = v;
        }
        if let Some(v) = self.calibracion {
            s.calibration = v;
        }
        if let Some(v) = self.dropout {
            s.dropout = v;
        }
        if let Some(v) = self.tasa {
            s.learning_rate = v;
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!((1..=100).contains(&self.k), "--k must be between 1 and 100");
        for (flag, value) in [
            ("--epocas", self.epocas),
            ("--dimension", self.dimension),
            ("--bloques", self.bloques),
            ("--longitud", self.longitud),
            ("--negativos", self.negativos),
            ("--lote", self.lote),
        ] {
            anyhow::ensure!(value != Some(0), "{flag} must be above 0");
        }
        if let Some(t) = self.calibracion {
            anyhow::ensure!(
                (0.0..=1.0).contains(&t),
                "--calibracion must be between 0 and 1"
            );
        }
        if let Some(p) = self.dropout {
            anyhow::ensure!(
                (0.0..1.0).contains(&p),
                "--dropout must be at least 0 and below 1"
            );
        }
        for (flag, value) in [("--segundos-max", self.segundos_max), ("--tasa", self.tasa)] {
            if let Some(v) = value {
                anyhow::ensure!(v > 0.0 && v.is_finite(), "{flag} must be above 0");
            }
        }
        Ok(())
    }
}

pub(super) async fn eval(
    args: RecommendEvalArgs,
    settings: &RecommendSettings,
) -> anyhow::Result<()> {
    args.check()?;
    let mut settings = crate::recommend::model_settings(settings);
    args.sequential(&mut settings);
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
                sequential_line(&mut out, report.sequential.as_ref());
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
                sequential_line(&mut out, report.sequential.as_ref());
                table(&mut out, "last item of each user", args.k, &report.rows);
                print!("{out}");
            }
        }
    }
    Ok(())
}

fn sequential_line(out: &mut String, training: Option<&eval::SequentialTraining>) {
    match training {
        Some(t) => {
            let _ = writeln!(
                out,
                "sequential model: {} epochs in {:.1} s, final loss {:.4}",
                t.epochs, t.seconds, t.final_loss
            );
        }
        None => {
            let _ = writeln!(out, "sequential model: not trained");
        }
    }
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
