//! The models as bytes, to store a generation in the database and load it on every
//! node: a fixed layout of little-endian numbers after a magic tag that names the
//! layout's version. A layout change gets a new tag; a generation of another layout
//! is refused (and the node trains a new one).

pub use crate::layout::Unreadable;
use crate::layout::{Reader, Writer};

use super::linalg::NotPositiveDefinite;
use super::models::{Ease, ModelSettings, Models, Neighbours};
use super::sequential::Sequential;

const MAGIC: &[u8; 8] = b"TNDREC02";

impl From<NotPositiveDefinite> for Unreadable {
    fn from(_: NotPositiveDefinite) -> Self {
        Unreadable("bad matrix")
    }
}

fn write_neighbours(w: &mut Writer, n: &Neighbours) {
    w.len(n.lists.len());
    for list in &n.lists {
        w.len(list.len());
        for &(item, score) in list {
            w.u32(item);
            w.f32(score);
        }
    }
}

fn read_neighbours(r: &mut Reader<'_>, items: usize) -> Result<Neighbours, Unreadable> {
    let n = r.len(4)?;
    let mut lists = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.len(8)?;
        let mut list = Vec::with_capacity(len);
        for _ in 0..len {
            let item = r.u32()?;
            if item as usize >= items {
                return Err(Unreadable("item out of range"));
            }
            list.push((item, r.f32()?));
        }
        lists.push(list);
    }
    Ok(Neighbours { lists })
}

/// The product ids (item numbering) and the models, as bytes.
pub fn encode(products: &[i64], models: &Models) -> Vec<u8> {
    let mut w = Writer::new(Vec::with_capacity(
        64 + models.ease.as_ref().map_or(0, |e| e.weights.len() * 4),
    ));
    w.bytes(MAGIC);
    w.len(products.len());
    for &p in products {
        w.i64(p);
    }
    let s = &models.settings;
    w.f32(s.half_life_days);
    w.i64(s.popularity_days);
    w.f64(s.ease_lambda);
    w.len(s.ease_max_items);
    w.len(s.neighbours);
    w.u32(s.min_support);
    w.i64(models.now);
    w.len(models.popularity.len());
    for &p in &models.popularity {
        w.f32(p);
    }
    write_neighbours(&mut w, &models.knn);
    write_neighbours(&mut w, &models.together);
    match &models.ease {
        None => w.u32(0),
        Some(ease) => {
            w.len(ease.items.len());
            for &i in &ease.items {
                w.u32(i);
            }
            for &x in &ease.weights {
                w.f32(x);
            }
        }
    }
    match models
        .sequential
        .as_ref()
        .and_then(|m| Some((m, m.tensors().ok()?)))
    {
        None => w.u32(0),
        Some((model, tensors)) => {
            w.u32(1);
            w.len(model.dim);
            w.len(model.blocks);
            w.len(model.heads);
            w.len(model.max_len);
            w.len(tensors.len());
            for (shape, values) in &tensors {
                w.len(shape.len());
                for &d in shape {
                    w.len(d);
                }
                for &x in values {
                    w.f32(x);
                }
            }
        }
    }
    w.into_bytes()
}

/// The sequential model after its flag, checked against the architecture.
fn sequential(r: &mut Reader<'_>, items: usize) -> Result<Option<Sequential>, Unreadable> {
    if r.u32()? == 0 {
        return Ok(None);
    }
    let (dim, blocks, heads, max_len) = (
        r.u32()? as usize,
        r.u32()? as usize,
        r.u32()? as usize,
        r.u32()? as usize,
    );
    let count = r.len(4)?;
    let mut tensors = Vec::with_capacity(count);
    for _ in 0..count {
        let rank = r.len(4)?;
        let shape = (0..rank)
            .map(|_| r.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let size = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let size = size.ok_or(Unreadable("tensor too large"))?;
        if size.saturating_mul(4) > r.remaining() {
            return Err(Unreadable("truncated"));
        }
        let values = (0..size).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        tensors.push((shape, values));
    }
    Sequential::from_tensors(items, dim, blocks, heads, max_len, tensors)
        .map(Some)
        .ok_or(Unreadable("sequential model of another shape"))
}

/// What [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<(Vec<i64>, Models), Unreadable> {
    let (magic, rest) = bytes
        .split_at_checked(MAGIC.len())
        .ok_or(Unreadable("truncated"))?;
    if magic != MAGIC {
        return Err(Unreadable("another layout"));
    }
    let mut r = Reader::new(rest);
    let n = r.len(8)?;
    let products = (0..n).map(|_| r.i64()).collect::<Result<Vec<_>, _>>()?;
    let settings = ModelSettings {
        half_life_days: r.f32()?,
        popularity_days: r.i64()?,
        ease_lambda: r.f64()?,
        ease_max_items: r.u32()? as usize,
        neighbours: r.u32()? as usize,
        min_support: r.u32()?,
        sequential: None,
    };
    let now = r.i64()?;
    let count = r.len(4)?;
    if count != n {
        return Err(Unreadable("popularity of another catalog"));
    }
    let popularity = (0..count).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
    let knn = read_neighbours(&mut r, n)?;
    let together = read_neighbours(&mut r, n)?;
    let m = r.len(4)?;
    let ease = if m == 0 {
        None
    } else {
        let items = (0..m).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        if m.saturating_mul(m).saturating_mul(4) > r.remaining() {
            return Err(Unreadable("truncated"));
        }
        let weights = (0..m * m).map(|_| r.f32()).collect::<Result<Vec<_>, _>>()?;
        let mut row_of = vec![u32::MAX; n];
        for (row, &item) in items.iter().enumerate() {
            *row_of
                .get_mut(item as usize)
                .ok_or(Unreadable("item out of range"))? = row as u32;
        }
        Some(Ease {
            items,
            row_of,
            weights,
        })
    };
    let sequential = sequential(&mut r, n)?;
    if r.remaining() != 0 {
        return Err(Unreadable("trailing bytes"));
    }
    let models = Models {
        items: n,
        settings,
        now,
        popularity,
        knn,
        ease,
        together,
        sequential,
    };
    Ok((products, models))
}

#[cfg(test)]
mod tests {
    use super::super::data::{Dataset, Purchase};
    use super::super::sequential::SequentialSettings;
    use super::*;

    #[test]
    fn a_generation_reads_back_as_it_was_and_damage_is_refused() {
        let mut purchases = Vec::new();
        for c in 0..24 {
            for (o, items) in [[1i64, 2], [2, 3]].iter().enumerate() {
                for &product in items {
                    purchases.push(Purchase {
                        customer: c,
                        product,
                        order: c * 10 + o as i64,
                        at: c * 1000,
                    });
                }
            }
        }
        let data = Dataset::new(&purchases, &[9]);
        let settings = ModelSettings {
            sequential: Some(SequentialSettings {
                dim: 8,
                blocks: 1,
                heads: 2,
                max_len: 4,
                negatives: 2,
                epochs: 2,
                min_steps: 0,
                ..SequentialSettings::default()
            }),
            ..ModelSettings::default()
        };
        let models = Models::train(&data, &settings).unwrap();
        let bytes = encode(&data.products, &models);
        let (products, back) = decode(&bytes).unwrap();
        assert_eq!(products, data.products);
        assert_eq!(back.popularity, models.popularity);
        assert_eq!(back.knn.lists, models.knn.lists);
        assert_eq!(back.together.lists, models.together.lists);
        let (a, b) = (models.ease.as_ref().unwrap(), back.ease.as_ref().unwrap());
        assert_eq!(
            (&a.items, &a.row_of, &a.weights),
            (&b.items, &b.row_of, &b.weights)
        );
        assert_eq!(back.now, models.now);
        let (a, b) = (
            models.sequential.as_ref().unwrap(),
            back.sequential.unwrap(),
        );
        assert_eq!(a.state(&[0, 1]).unwrap(), b.state(&[0, 1]).unwrap());
        for cut in [0, 7, 8, 20, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut other = bytes.clone();
        other[7] = b'9';
        assert!(decode(&other).is_err());
    }
}
