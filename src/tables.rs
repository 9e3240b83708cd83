//! The report as Parquet tables for corpora too large to read as JSON:
//! `claims.parquet` (a row per claim, optionally with its embedding),
//! `groups.parquet` (a row per group) and `pairs.parquet` (a row per duplicate
//! pair), written with arrow-rs, Snappy-compressed, readable by DuckDB, pandas
//! and polars. Each file is written atomically. The columns are listed in
//! `docs/ARCHITECTURE.md` (the report contract).

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, ListArray, RecordBatch, StringArray,
    UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field};
use ndarray::Array2;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};
use crate::report::{ClusterOut, Report};

/// The file names, in the order [`write()`] writes them.
pub const FILES: [&str; 3] = ["claims.parquet", "groups.parquet", "pairs.parquet"];

/// Writes the three tables of `report` into `dir`; with `embeddings` (a row per
/// claim, in the report's order), claims.parquet gains an `embedding` column.
pub fn write(report: &Report, embeddings: Option<&Array2<f32>>, dir: &Path) -> Result<()> {
    if let Some(e) = embeddings {
        if e.nrows() != report.claims.len() {
            return Err(Error::Invalid {
                option: "the embeddings for claims.parquet",
                why: format!("{} rows for {} claims", e.nrows(), report.claims.len()),
            });
        }
    }
    let batches = [claims(report, embeddings), groups(report), pairs(report)];
    for (name, batch) in FILES.iter().zip(batches) {
        let path = dir.join(name);
        let batch = batch.map_err(|e| parquet_error(&path, e))?;
        write_batch(&path, &batch)?;
    }
    Ok(())
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, "cannot write", std::io::Error::other(e.to_string()))
}

/// Writes one batch as a Parquet file, atomically.
fn write_batch(path: &Path, batch: &RecordBatch) -> Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    crate::output::write_atomically(path, |out| {
        let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(props))
            .map_err(std::io::Error::other)?;
        writer.write(batch).map_err(std::io::Error::other)?;
        writer.close().map(drop).map_err(std::io::Error::other)
    })
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn floats(values: impl Iterator<Item = f32>) -> ArrayRef {
    Arc::new(Float32Array::from_iter_values(values))
}

fn string_lists<'a>(lists: impl Iterator<Item = &'a [String]>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for list in lists {
        for s in list {
            builder.values().append_value(s);
        }
        builder.append(true);
    }
    let array: ListArray = builder.finish();
    Arc::new(array)
}

/// A row per claim: where it is, its group and its stance.
fn claims(
    report: &Report,
    embeddings: Option<&Array2<f32>>,
) -> std::result::Result<RecordBatch, ArrowError> {
    let c = &report.claims;
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("id", strings(c.iter().map(|x| x.claim.id.as_str()))),
        (
            "article",
            strings(c.iter().map(|x| x.claim.article.as_str())),
        ),
        ("lang", strings(c.iter().map(|x| x.claim.lang.code()))),
        ("start", bytes(c.iter().map(|x| x.claim.start))),
        ("end", bytes(c.iter().map(|x| x.claim.end))),
        ("text", strings(c.iter().map(|x| x.claim.text.as_str()))),
        (
            "group",
            Arc::new(UInt32Array::from_iter(
                c.iter().map(|x| x.cluster.map(|g| g as u32)),
            )),
        ),
        (
            "stance",
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|x| x.stance.label.to_string()),
            )),
        ),
        ("stance_score", floats(c.iter().map(|x| x.stance.score))),
        (
            "p_supports",
            floats(c.iter().map(|x| x.stance.probabilities.supports)),
        ),
        (
            "p_challenges",
            floats(c.iter().map(|x| x.stance.probabilities.challenges)),
        ),
        (
            "p_neutral",
            floats(c.iter().map(|x| x.stance.probabilities.neutral)),
        ),
    ];
    if let Some(e) = embeddings {
        columns.push(("embedding", embedding_column(e)?));
    }
    RecordBatch::try_from_iter(columns)
}

fn bytes(values: impl Iterator<Item = usize>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(values.map(|v| v as u64)))
}

/// Each row as a fixed-size list of float32 (a `FLOAT[dim]` array in DuckDB).
fn embedding_column(e: &Array2<f32>) -> std::result::Result<ArrayRef, ArrowError> {
    let dim =
        i32::try_from(e.ncols()).map_err(|_| ArrowError::InvalidArgumentError("dim".into()))?;
    let values = Float32Array::from_iter_values(e.iter().copied());
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    Ok(Arc::new(FixedSizeListArray::try_new(
        item,
        dim,
        Arc::new(values),
        None,
    )?))
}

/// A row per group: its size, articles, label, members, coherence and stance.
fn groups(report: &Report) -> std::result::Result<RecordBatch, ArrowError> {
    let g = &report.clusters;
    let shared_figures: Vec<Vec<String>> = g.iter().map(ClusterOut::shared_figures).collect();
    RecordBatch::try_from_iter([
        (
            "group",
            Arc::new(UInt32Array::from_iter_values(g.iter().map(|x| x.id as u32))) as ArrayRef,
        ),
        ("size", bytes(g.iter().map(|x| x.size))),
        ("label", strings(g.iter().map(|x| x.label.as_str()))),
        ("articles", string_lists(g.iter().map(|x| &x.articles[..]))),
        ("members", string_lists(g.iter().map(|x| &x.members[..]))),
        ("keywords", string_lists(g.iter().map(|x| &x.keywords[..]))),
        (
            "shared_figures",
            string_lists(shared_figures.iter().map(|f| &f[..])),
        ),
        ("coherence", floats(g.iter().map(|x| x.coherence))),
        (
            "stance",
            Arc::new(StringArray::from_iter_values(
                g.iter().map(|x| x.stance.label.to_string()),
            )),
        ),
        (
            "stance_confidence",
            floats(g.iter().map(|x| x.stance.confidence)),
        ),
        (
            "contested",
            Arc::new(BooleanArray::from_iter(
                g.iter().map(|x| Some(x.stance.contested)),
            )),
        ),
    ])
}

/// A row per duplicate pair: the two claims, their articles, probability, cosine.
fn pairs(report: &Report) -> std::result::Result<RecordBatch, ArrowError> {
    let d = &report.duplicates;
    let article = |id: &str| report.claim(id).claim.article.as_str();
    RecordBatch::try_from_iter([
        ("a", strings(d.iter().map(|p| p.a.as_str()))),
        ("b", strings(d.iter().map(|p| p.b.as_str()))),
        ("article_a", strings(d.iter().map(|p| article(&p.a)))),
        ("article_b", strings(d.iter().map(|p| article(&p.b)))),
        ("probability", floats(d.iter().map(|p| p.probability))),
        ("cosine", floats(d.iter().map(|p| p.cosine))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    #[test]
    fn embeddings_become_fixed_size_lists() {
        let e = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32);
        let column = embedding_column(&e).unwrap();
        let list = column
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        assert_eq!((list.len(), list.value_length()), (3, 4));
        let row1 = list.value(1);
        let row1 = row1.as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(row1.values(), &[4.0, 5.0, 6.0, 7.0]);
    }

    #[test]
    fn a_batch_reads_back_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let batch = RecordBatch::try_from_iter([
            ("id", strings(["c0", "c1"].into_iter())),
            (
                "words",
                string_lists([vec!["a".to_string()], vec![]].iter().map(|v| &v[..])),
            ),
        ])
        .unwrap();
        write_batch(&path, &batch).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(read, vec![batch]);
    }
}
