//! A learned generation as bytes (see [`crate::layout`]): the model's mean and place
//! propensities, the embedder its query vectors came from, and each query with its
//! vector (when there is one) and its products' lifts.

use super::model::{ClickModel, QueryLifts};
use crate::layout::{Reader, Unreadable, Writer};

const MAGIC: &[u8; 8] = b"TNDCLK01";

/// The model, and each query's vector from `embedder` (in the model's query order).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub model: ClickModel,
    pub embedder: String,
    pub vectors: Vec<Option<Vec<f32>>>,
}

pub fn encode(stored: &Stored) -> Vec<u8> {
    let mut w = Writer::new(Vec::new());
    w.bytes(MAGIC);
    w.f64(stored.model.mean);
    w.len(stored.model.propensities.len());
    for &p in &stored.model.propensities {
        w.f64(p);
    }
    w.str(&stored.embedder);
    w.len(stored.model.queries.len());
    for (query, vector) in stored.model.queries.iter().zip(&stored.vectors) {
        w.str(&query.query);
        match vector {
            None => w.len(0),
            Some(v) => {
                w.len(v.len());
                for &x in v {
                    w.f32(x);
                }
            }
        }
        w.len(query.lifts.len());
        for &(product, lift) in &query.lifts {
            w.i64(product);
            w.f32(lift);
        }
    }
    w.into_bytes()
}

pub fn decode(bytes: &[u8]) -> Result<Stored, Unreadable> {
    let mut r = Reader::new(bytes);
    if r.bytes(MAGIC.len())? != MAGIC {
        return Err(Unreadable("another layout"));
    }
    let mean = r.f64()?;
    let n = r.len(8)?;
    let propensities = (0..n).map(|_| r.f64()).collect::<Result<Vec<_>, _>>()?;
    let embedder = r.str()?.to_owned();
    let n = r.len(12)?;
    let (mut queries, mut vectors) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let query = r.str()?.to_owned();
        let dim = r.len(4)?;
        vectors.push(if dim == 0 {
            None
        } else {
            Some((0..dim).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?)
        });
        let count = r.len(12)?;
        let lifts = (0..count)
            .map(|_| Ok((r.i64()?, r.f32()?)))
            .collect::<Result<Vec<_>, Unreadable>>()?;
        queries.push(QueryLifts { query, lifts });
    }
    if r.remaining() != 0 {
        return Err(Unreadable("trailing bytes"));
    }
    Ok(Stored {
        model: ClickModel {
            propensities,
            mean,
            queries,
        },
        embedder,
        vectors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_reads_back_as_it_was_and_damage_is_refused() {
        let stored = Stored {
            model: ClickModel {
                propensities: vec![1.0, 0.5],
                mean: 0.2,
                queries: vec![
                    QueryLifts {
                        query: "taladro inalambrico".into(),
                        lifts: vec![(7, 0.3), (2, -0.1)],
                    },
                    QueryLifts {
                        query: "martillo".into(),
                        lifts: vec![(4, 0.05)],
                    },
                ],
            },
            embedder: "hash:8".into(),
            vectors: vec![Some(vec![0.5; 8]), None],
        };
        let bytes = encode(&stored);
        assert_eq!(decode(&bytes).unwrap(), stored);
        for cut in [0, 7, 8, 30, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[7] = b'9';
        assert!(decode(&other).is_err());
    }
}
