//! The in-memory ANN index over chunk vectors, with FAISS.
//!
//! FAISS labels are internal slots, not chunk keys: updating a chunk adds its new
//! vector under a new slot and retires the old one, so HNSW (which cannot remove)
//! and Flat behave alike. Retired slots are skipped at search time; searches fetch
//! more candidates until `k` live ones that pass the filter are found or the index is
//! exhausted, so a filter never costs results that exist. Searches run single-threaded
//! (OpenMP teams make one query several times slower on small machines).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use faiss::index::IndexImpl;
use faiss::{Idx, Index, MetricType, index_factory};
use serde::{Deserialize, Serialize};

#[link(name = "gomp")]
unsafe extern "C" {
    fn omp_set_num_threads(n: std::os::raw::c_int);
}

/// Which FAISS structure holds the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// Exact search: best for small catalogs.
    Flat,
    /// HNSW graph (M = 32): sub-linear search for large catalogs.
    Hnsw,
}

impl IndexKind {
    /// Flat up to `hnsw_from` vectors, HNSW above.
    pub fn for_size(vectors: usize, hnsw_from: usize) -> Self {
        if vectors >= hnsw_from {
            IndexKind::Hnsw
        } else {
            IndexKind::Flat
        }
    }

    fn factory(self) -> &'static str {
        match self {
            IndexKind::Flat => "IDMap2,Flat",
            IndexKind::Hnsw => "IDMap2,HNSW32",
        }
    }
}

/// What is saved next to the FAISS file.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    kind: IndexKind,
    dim: usize,
    /// Slot → chunk key; `None` for retired slots.
    keys: Vec<Option<i64>>,
    /// Free-form provenance (embedder id, source version) checked on load.
    tag: String,
}

struct Inner {
    index: IndexImpl,
    keys: Vec<Option<i64>>,
    slot_of: HashMap<i64, usize>,
}

/// A FAISS index of unit vectors keyed by chunk id; inner product = cosine.
pub struct VectorIndex {
    inner: Mutex<Inner>,
    kind: IndexKind,
    dim: usize,
}

fn single_threaded() {
    omp_threads(1);
}

fn omp_threads(n: usize) {
    // SAFETY: sets this thread's OpenMP team size; no other effect.
    unsafe { omp_set_num_threads(n.max(1) as std::os::raw::c_int) };
}

/// Adds of at least this many vectors use every core (HNSW construction is costly).
const PARALLEL_ADD_FROM: usize = 2048;

impl VectorIndex {
    /// An empty index.
    pub fn new(kind: IndexKind, dim: usize) -> anyhow::Result<Self> {
        let index = index_factory(dim as u32, kind.factory(), MetricType::InnerProduct)
            .with_context(|| format!("creating a FAISS {kind:?} index of dimension {dim}"))?;
        Ok(Self {
            inner: Mutex::new(Inner {
                index,
                keys: Vec::new(),
                slot_of: HashMap::new(),
            }),
            kind,
            dim,
        })
    }

    /// How many candidates an HNSW search explores (FAISS `efSearch`; a search
    /// explores at least as many as it asks for). Exact indexes have nothing to set.
    pub fn set_ef_search(&self, ef: usize) -> anyhow::Result<()> {
        if self.kind != IndexKind::Hnsw {
            return Ok(());
        }
        let inner = self.inner.lock().expect("index lock");
        faiss::index::autotune::ParameterSpace::new()?
            .set_index_parameter(&inner.index, "efSearch", ef.max(1) as f64)
            .context("setting efSearch")?;
        Ok(())
    }

    pub fn kind(&self) -> IndexKind {
        self.kind
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("index lock").slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces the vectors of `keys` (`vectors` holds `keys.len() * dim` values).
    pub fn upsert(&self, keys: &[i64], vectors: &[f32]) -> anyhow::Result<()> {
        anyhow::ensure!(
            vectors.len() == keys.len() * self.dim,
            "{} values for {} vectors of dimension {}",
            vectors.len(),
            keys.len(),
            self.dim
        );
        let mut inner = self.inner.lock().expect("index lock");
        let first = inner.keys.len();
        let slots: Vec<Idx> = (first..first + keys.len())
            .map(|s| Idx::new(s as u64))
            .collect();
        if keys.len() >= PARALLEL_ADD_FROM {
            omp_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
        } else {
            single_threaded();
        }
        inner.index.add_with_ids(vectors, &slots)?;
        for (offset, key) in keys.iter().enumerate() {
            let slot = first + offset;
            inner.keys.push(Some(*key));
            if let Some(old) = inner.slot_of.insert(*key, slot) {
                inner.keys[old] = None;
            }
        }
        Ok(())
    }

    /// Forgets the vectors of `keys`.
    pub fn remove(&self, keys: &[i64]) {
        let mut inner = self.inner.lock().expect("index lock");
        for key in keys {
            if let Some(slot) = inner.slot_of.remove(key) {
                inner.keys[slot] = None;
            }
        }
    }

    /// Share of slots that are retired; worth a rebuild when large.
    pub fn retired_share(&self) -> f64 {
        let inner = self.inner.lock().expect("index lock");
        if inner.keys.is_empty() {
            return 0.0;
        }
        1.0 - inner.slot_of.len() as f64 / inner.keys.len() as f64
    }

    /// The best `k` live keys by inner product with `query` among those `keep` accepts.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(i64) -> bool,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        anyhow::ensure!(
            query.len() == self.dim,
            "query of dimension {} for an index of {}",
            query.len(),
            self.dim
        );
        let mut inner = self.inner.lock().expect("index lock");
        let total = inner.keys.len();
        if k == 0 || total == 0 {
            return Ok(Vec::new());
        }
        let retired = total - inner.slot_of.len();
        let mut fetch = (k * 4 + retired).min(total);
        single_threaded();
        loop {
            let found = inner.index.search(query, fetch)?;
            let mut hits = Vec::with_capacity(k);
            for (label, score) in found.labels.iter().zip(&found.distances) {
                let Some(slot) = label.get() else { break };
                if let Some(Some(key)) = inner.keys.get(slot as usize)
                    && keep(*key)
                {
                    hits.push((*key, *score));
                    if hits.len() == k {
                        break;
                    }
                }
            }
            if hits.len() == k || fetch >= total {
                return Ok(hits);
            }
            fetch = (fetch * 4).min(total);
        }
    }

    /// Inner products of `query` with the stored vectors of `keys`; `None` for a key
    /// the index does not hold.
    pub fn scores(&self, query: &[f32], keys: &[i64]) -> anyhow::Result<Vec<Option<f32>>> {
        anyhow::ensure!(
            query.len() == self.dim,
            "query of dimension {} for an index of {}",
            query.len(),
            self.dim
        );
        let inner = self.inner.lock().expect("index lock");
        let mut stored = vec![0.0; self.dim];
        keys.iter()
            .map(|key| match inner.slot_of.get(key) {
                None => Ok(None),
                Some(&slot) => {
                    inner
                        .index
                        .reconstruct(Idx::new(slot as u64), &mut stored)?;
                    Ok(Some(stored.iter().zip(query).map(|(a, b)| a * b).sum()))
                }
            })
            .collect()
    }

    /// Writes the index and its sidecar next to each other (`path` and `path.json`),
    /// each through a temporary file and a rename. `tag` records what the index
    /// reflects (embedder id, source version); [`VectorIndex::load`] checks it.
    pub fn save(&self, path: &Path, tag: &str) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let inner = self.inner.lock().expect("index lock");
        let tmp = path.with_extension("faiss.tmp");
        let tmp_str = tmp.to_str().context("index path is not UTF-8")?;
        faiss::write_index(&inner.index, tmp_str)
            .with_context(|| format!("writing {}", tmp.display()))?;
        let sidecar = Sidecar {
            kind: self.kind,
            dim: self.dim,
            keys: inner.keys.clone(),
            tag: tag.to_owned(),
        };
        let sidecar_path = sidecar_path(path);
        let sidecar_tmp = sidecar_path.with_extension("json.tmp");
        std::fs::write(&sidecar_tmp, serde_json::to_vec(&sidecar)?)?;
        std::fs::rename(&tmp, path)?;
        std::fs::rename(&sidecar_tmp, &sidecar_path)?;
        Ok(())
    }

    /// Loads a saved index; `None` when absent, or when its tag differs from `tag`
    /// (another embedder or another version of the data: the caller rebuilds).
    pub fn load(path: &Path, tag: &str) -> anyhow::Result<Option<Self>> {
        let sidecar_path = sidecar_path(path);
        if !path.exists() || !sidecar_path.exists() {
            return Ok(None);
        }
        let sidecar: Sidecar = serde_json::from_slice(&std::fs::read(&sidecar_path)?)
            .with_context(|| format!("reading {}", sidecar_path.display()))?;
        if sidecar.tag != tag {
            return Ok(None);
        }
        let index = faiss::read_index(path.to_str().context("index path is not UTF-8")?)
            .with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(
            index.ntotal() as usize == sidecar.keys.len(),
            "{} holds {} vectors but its sidecar names {}",
            path.display(),
            index.ntotal(),
            sidecar.keys.len()
        );
        let slot_of = sidecar
            .keys
            .iter()
            .enumerate()
            .filter_map(|(slot, key)| key.map(|k| (k, slot)))
            .collect();
        Ok(Some(Self {
            inner: Mutex::new(Inner {
                index,
                keys: sidecar.keys,
                slot_of,
            }),
            kind: sidecar.kind,
            dim: sidecar.dim,
        }))
    }
}

fn sidecar_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".json");
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        values.iter().map(|v| v / norm).collect()
    }

    fn sample(kind: IndexKind) -> VectorIndex {
        let index = VectorIndex::new(kind, 3).unwrap();
        let vectors: Vec<f32> = [
            [1.0, 0.0, 0.0],
            [0.9, 0.1, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ]
        .iter()
        .flat_map(|v| unit(v))
        .collect();
        index.upsert(&[10, 11, 12, 13], &vectors).unwrap();
        index
    }

    #[test]
    fn scores_any_stored_key_against_a_query() {
        for kind in [IndexKind::Flat, IndexKind::Hnsw] {
            let index = sample(kind);
            let query = unit(&[0.0, 1.0, 0.0]);
            let scores = index.scores(&query, &[12, 13, 99]).unwrap();
            assert!(
                (scores[0].unwrap() - 1.0).abs() < 1e-5,
                "{kind:?}: {scores:?}"
            );
            assert!(scores[1].unwrap().abs() < 1e-5, "{kind:?}: {scores:?}");
            assert_eq!(scores[2], None, "{kind:?}");
            // An updated key is scored by its new vector.
            index.upsert(&[13], &query).unwrap();
            assert!((index.scores(&query, &[13]).unwrap()[0].unwrap() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn finds_nearest_and_respects_filters_and_updates() {
        for kind in [IndexKind::Flat, IndexKind::Hnsw] {
            let index = sample(kind);
            let query = unit(&[1.0, 0.05, 0.0]);
            let hits = index.search(&query, 2, |_| true).unwrap();
            assert_eq!(
                hits.iter().map(|h| h.0).collect::<Vec<_>>(),
                [10, 11],
                "{kind:?}"
            );
            // A filter that rejects the best candidates still yields k results.
            let hits = index.search(&query, 2, |key| key >= 12).unwrap();
            assert_eq!(hits.len(), 2, "{kind:?}");
            assert!(hits.iter().all(|h| h.0 >= 12));
            // Replacing a vector moves the key; removing it hides it.
            index.upsert(&[10], &unit(&[0.0, 0.0, 1.0])).unwrap();
            let hits = index.search(&query, 1, |_| true).unwrap();
            assert_eq!(hits[0].0, 11, "{kind:?}");
            index.remove(&[11]);
            let hits = index.search(&query, 4, |_| true).unwrap();
            assert_eq!(hits.len(), 3);
            assert!(hits.iter().all(|h| h.0 != 11));
            assert_eq!(index.len(), 3);
            assert!(index.retired_share() > 0.3);
        }
    }

    #[test]
    fn saves_and_loads_only_with_the_same_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.faiss");
        let index = sample(IndexKind::Hnsw);
        index.set_ef_search(64).unwrap();
        index.remove(&[13]);
        index.save(&path, "test").unwrap();
        assert!(
            VectorIndex::load(&path, "other-embedder")
                .unwrap()
                .is_none()
        );
        let loaded = VectorIndex::load(&path, "test")
            .unwrap()
            .expect("saved index");
        assert_eq!(loaded.len(), 3);
        assert_eq!(loaded.kind(), IndexKind::Hnsw);
        let hits = loaded.search(&unit(&[0.0, 0.0, 1.0]), 1, |_| true).unwrap();
        assert_ne!(hits[0].0, 13);
        assert!(
            VectorIndex::load(&dir.path().join("missing.faiss"), "test")
                .unwrap()
                .is_none()
        );
    }
}
