//! Chunks as Arrow record batches, the table's schema, and back.

use std::sync::Arc;

use anyhow::Context;
use lancedb::arrow::arrow_array::cast::AsArray;
use lancedb::arrow::arrow_array::types::{Float32Type, Int64Type};
use lancedb::arrow::arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch,
    StringArray,
};
use lancedb::arrow::arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{Chunk, ChunkKind};

/// The chunk table's columns, with vectors of `dim` numbers.
pub(super) fn schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("sku", DataType::Utf8, true),
        Field::new("categoria", DataType::Utf8, true),
        Field::new("precio_centavos", DataType::Int64, true),
        Field::new("stock", DataType::Int64, true),
        Field::new("activo", DataType::Boolean, false),
        Field::new("title", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("content_hash", DataType::Utf8, false),
        Field::new(
            "vector",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, true)),
                dim as i32,
            ),
            false,
        ),
    ]))
}

/// `chunks` as one batch of the table's schema.
pub(super) fn to_batch(chunks: &[Chunk], dim: usize) -> anyhow::Result<RecordBatch> {
    let mut flat = Vec::with_capacity(chunks.len() * dim);
    for chunk in chunks {
        anyhow::ensure!(
            chunk.vector.len() == dim,
            "chunk {} has a vector of dimension {}, not {}",
            chunk.key,
            chunk.vector.len(),
            dim
        );
        flat.extend_from_slice(&chunk.vector);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let vectors =
        FixedSizeListArray::try_new(item, dim as i32, Arc::new(Float32Array::from(flat)), None)?;
    let text = |f: fn(&Chunk) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(chunks.iter().map(f).collect::<Vec<_>>()))
    };
    let int = |f: fn(&Chunk) -> Option<i64>| -> ArrayRef {
        Arc::new(Int64Array::from(chunks.iter().map(f).collect::<Vec<_>>()))
    };
    Ok(RecordBatch::try_new(
        schema(dim),
        vec![
            Arc::new(Int64Array::from(
                chunks.iter().map(|c| c.key).collect::<Vec<_>>(),
            )),
            text(|c| Some(c.kind.as_str())),
            text(|c| c.sku.as_deref()),
            text(|c| c.categoria.as_deref()),
            int(|c| c.precio_centavos),
            int(|c| c.stock),
            Arc::new(BooleanArray::from(
                chunks.iter().map(|c| c.activo).collect::<Vec<_>>(),
            )),
            text(|c| Some(c.title.as_str())),
            text(|c| Some(c.text.as_str())),
            text(|c| Some(c.content_hash.as_str())),
            Arc::new(vectors),
        ],
    )?)
}

/// The column `name` of `batch`; an error names it when the batch lacks it.
pub(super) fn column<'a>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .with_context(|| format!("{name} column"))
}

/// Appends the chunks of `batch` (whichever of its columns it has) to `out`.
pub(super) fn read_chunks(
    batch: &RecordBatch,
    dim: usize,
    out: &mut Vec<Chunk>,
) -> anyhow::Result<()> {
    let keys = column(batch, "key")?.as_primitive::<Int64Type>();
    let kinds = column(batch, "kind")?.as_string::<i32>();
    let skus = column(batch, "sku")?.as_string::<i32>();
    let categorias = column(batch, "categoria")?.as_string::<i32>();
    let precios = column(batch, "precio_centavos")?.as_primitive::<Int64Type>();
    let stocks = column(batch, "stock")?.as_primitive::<Int64Type>();
    let activos = column(batch, "activo")?.as_boolean();
    let hashes = column(batch, "content_hash")?.as_string::<i32>();
    let texts = batch.column_by_name("text").map(|c| c.as_string::<i32>());
    let vectors = batch.column_by_name("vector").map(|c| {
        c.as_fixed_size_list()
            .values()
            .as_primitive::<Float32Type>()
            .clone()
    });
    let text = |array: &StringArray, row: usize| {
        (!array.is_null(row)).then(|| array.value(row).to_owned())
    };
    let int = |array: &Int64Array, row: usize| (!array.is_null(row)).then(|| array.value(row));
    for row in 0..batch.num_rows() {
        out.push(Chunk {
            key: keys.value(row),
            kind: ChunkKind::parse(kinds.value(row)).unwrap_or(ChunkKind::Documento),
            sku: text(skus, row),
            categoria: text(categorias, row),
            precio_centavos: int(precios, row),
            stock: int(stocks, row),
            activo: activos.value(row),
            title: String::new(),
            text: texts.map(|t| t.value(row).to_owned()).unwrap_or_default(),
            content_hash: hashes.value(row).to_owned(),
            vector: vectors
                .as_ref()
                .map(|v| v.values()[row * dim..(row + 1) * dim].to_vec())
                .unwrap_or_default(),
        });
    }
    Ok(())
}
