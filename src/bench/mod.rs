//! `stancemap bench`: embedding speed on a workload, per precision, side by side
//! in one run with candle-transformers' stock `BertModel` as the baseline; and
//! ([`scale`]) the neighbour and grouping stages on synthetic corpora up to a
//! million claims.

pub mod scale;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use ndarray::Array2;
use serde::Serialize;

use crate::cpu::CpuInfo;
use crate::embed::{EmbedOptions, Embedder, Precision, Role};
use crate::error::{Error, Result};
use crate::input::read_passages;
use crate::model::ModelFiles;

/// The short query timed for latency (one Chinese query, as users type them).
pub const QUERY: &str = "中国稀土出口管制";

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub workload: PathBuf,
    pub precisions: Vec<Precision>,
    pub batch_size: usize,
    pub threads: usize,
    /// Use only the first N passages.
    pub limit: Option<usize>,
    /// Also time candle-transformers' stock `BertModel` (f32, padded batches).
    pub stock_baseline: bool,
    /// Timed single-query runs per engine.
    pub query_runs: usize,
}

/// One engine's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub engine: String,
    pub precision: String,
    pub load_s: f64,
    pub passages: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub passages_per_s: f64,
    pub tokens_per_s: f64,
    pub query_ms_median: f64,
    pub peak_rss_mib: Option<f64>,
    /// Cosine to stancemap f32 on the same passages (mean, min), when f32 ran.
    pub cos_vs_f32_mean: Option<f64>,
    pub cos_vs_f32_min: Option<f64>,
}

/// The whole run: machine, settings and one row per engine.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub cpu: CpuInfo,
    pub threads: usize,
    pub batch_size: usize,
    pub model: String,
    pub workload: String,
    pub rows: Vec<BenchRow>,
}

/// Runs the benchmark; `log` receives one line per finished engine.
pub fn run(
    files: &ModelFiles,
    opts: &BenchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<BenchReport> {
    let mut warnings = Vec::new();
    let mut passages = read_passages(&opts.workload, &mut warnings)?;
    for warning in &warnings {
        log(&format!("warning: {warning}"));
    }
    if let Some(n) = opts.limit {
        passages.truncate(n);
    }
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let mut rows = Vec::new();
    let mut reference: Option<Array2<f32>> = None;
    let mut tokens = 0;
    for &precision in &opts.precisions {
        reset_peak_rss();
        let start = Instant::now();
        let options = EmbedOptions {
            precision,
            batch_size: opts.batch_size,
            adapter: None,
        };
        let embedder = Embedder::load(files.clone(), options)?;
        let load_s = start.elapsed().as_secs_f64();
        tokens = embedder
            .token_ids(&texts, Role::Passage)?
            .iter()
            .map(Vec::len)
            .sum();
        embedder.embed(
            &texts[..texts.len().min(opts.batch_size)],
            Role::Passage,
            &mut |_, _| {},
        )?;
        let start = Instant::now();
        let vectors = embedder.embed(&texts, Role::Passage, &mut |_, _| {})?;
        let seconds = start.elapsed().as_secs_f64();
        let query_ms = median_ms(opts.query_runs, || {
            embedder
                .embed(&[QUERY], Role::Query, &mut |_, _| {})
                .map(|_| ())
        })?;
        if precision == Precision::F32 {
            reference = Some(vectors.clone());
        }
        let row = row(
            "stancemap",
            precision.to_string(),
            load_s,
            texts.len(),
            tokens,
            seconds,
            query_ms,
            reference.as_ref().map(|r| agreement(r, &vectors)),
        );
        log(&format_row(&row));
        rows.push(row);
    }
    if opts.stock_baseline {
        reset_peak_rss();
        let row = stock_candle(files, &texts, tokens, opts, reference.as_ref())?;
        log(&format_row(&row));
        rows.push(row);
    }
    Ok(BenchReport {
        cpu: CpuInfo::detect(),
        threads: opts.threads,
        batch_size: opts.batch_size,
        model: files.id.clone(),
        workload: opts.workload.display().to_string(),
        rows,
    })
}

#[allow(clippy::too_many_arguments)]
fn row(
    engine: &str,
    precision: String,
    load_s: f64,
    passages: usize,
    tokens: usize,
    seconds: f64,
    query_ms: f64,
    agreement: Option<(f64, f64)>,
) -> BenchRow {
    BenchRow {
        engine: engine.to_string(),
        precision,
        load_s,
        passages,
        tokens,
        seconds,
        passages_per_s: passages as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        query_ms_median: query_ms,
        peak_rss_mib: peak_rss_mib(),
        cos_vs_f32_mean: agreement.map(|a| a.0),
        cos_vs_f32_min: agreement.map(|a| a.1),
    }
}

/// Mean and minimum row-wise cosine of two sets of unit vectors.
pub fn agreement(a: &Array2<f32>, b: &Array2<f32>) -> (f64, f64) {
    let cos: Vec<f64> = a
        .rows()
        .into_iter()
        .zip(b.rows())
        .map(|(x, y)| x.dot(&y) as f64)
        .collect();
    let mean = cos.iter().sum::<f64>() / cos.len().max(1) as f64;
    (mean, cos.iter().copied().fold(f64::INFINITY, f64::min))
}

fn median_ms<E: Into<Error>>(
    runs: usize,
    mut f: impl FnMut() -> std::result::Result<(), E>,
) -> Result<f64> {
    f().map_err(Into::into)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f().map_err(Into::into)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// candle-transformers' `BertModel` as it ships: padded batches (same length
/// sorting and batch size), attention-masked mean pooling.
fn stock_candle(
    files: &ModelFiles,
    texts: &[&str],
    tokens: usize,
    opts: &BenchOptions,
    reference: Option<&Array2<f32>>,
) -> Result<BenchRow> {
    let start = Instant::now();
    let config_path = files.dir.join("config.json");
    let config_text = std::fs::read_to_string(&config_path)
        .map_err(|e| Error::io(&config_path, "cannot read", e))?;
    let config: BertConfig = serde_json::from_str(&config_text).map_err(|e| Error::Data {
        path: config_path.clone(),
        why: format!("not a candle-transformers bert::Config: {e}"),
    })?;
    let vb = unsafe {
        candle_nn::VarBuilder::from_mmaped_safetensors(&[&files.weights], DType::F32, &Device::Cpu)?
    };
    let model = BertModel::load(vb, &config)?;
    // The tokenizer comes from our embedder (same prefixes, same ids).
    let embedder = Embedder::load(files.clone(), EmbedOptions::default())?;
    let load_s = start.elapsed().as_secs_f64();
    let ids = embedder.token_ids(texts, Role::Passage)?;
    if ids.iter().any(|s| s.len() > files.config.max_tokens()) {
        return Err(Error::Data {
            path: opts.workload.clone(),
            why: format!(
                "the stock baseline takes no text over {} tokens",
                files.config.max_tokens()
            ),
        });
    }
    let run = |ids: &[Vec<u32>]| -> Result<Array2<f32>> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = Array2::<f32>::zeros((ids.len(), embedder.dim()));
        for batch in order.chunks(opts.batch_size.max(1)) {
            let width = ids[batch[0]].len();
            let mut flat = Vec::with_capacity(batch.len() * width);
            let mut mask = Vec::with_capacity(batch.len() * width);
            for &i in batch {
                let s = &ids[i];
                flat.extend(
                    s.iter()
                        .copied()
                        .chain(std::iter::repeat_n(1, width - s.len())),
                );
                mask.extend((0..width).map(|p| u32::from(p < s.len())));
            }
            let shape = (batch.len(), width);
            let input = Tensor::from_vec(flat, shape, &Device::Cpu)?;
            let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
            let hidden = model.forward(&input, &input.zeros_like()?, Some(&mask))?;
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let pooled = hidden
                .broadcast_mul(&mask)?
                .sum(1)?
                .broadcast_div(&mask.sum(1)?)?;
            for (&i, row) in batch.iter().zip(pooled.to_vec2::<f32>()?) {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                out.row_mut(i)
                    .iter_mut()
                    .zip(&row)
                    .for_each(|(o, v)| *o = v / norm);
            }
        }
        Ok(out)
    };
    run(&ids[..ids.len().min(opts.batch_size)])?;
    let start = Instant::now();
    let vectors = run(&ids)?;
    let seconds = start.elapsed().as_secs_f64();
    let query_ids = embedder.token_ids(&[QUERY], Role::Query)?;
    let query_ms = median_ms(opts.query_runs, || run(&query_ids).map(|_| ()))?;
    Ok(row(
        "candle BertModel (stock)",
        "f32".into(),
        load_s,
        texts.len(),
        tokens,
        seconds,
        query_ms,
        reference.map(|r| agreement(r, &vectors)),
    ))
}

/// Resets the process's peak resident set size (Linux), so the next reading is
/// the peak of what runs after.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size since the last reset, in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

const HEADER: &str = "| engine | precision | passages/s | tokens/s | query ms (p50) | load s | peak RSS MiB | cos vs f32 mean / min |\n|---|---|---|---|---|---|---|---|";

fn format_row(r: &BenchRow) -> String {
    let cos = match (r.cos_vs_f32_mean, r.cos_vs_f32_min) {
        (Some(mean), Some(min)) => format!("{mean:.5} / {min:.5}"),
        _ => "—".into(),
    };
    let rss = r.peak_rss_mib.map_or("—".into(), |m| format!("{m:.0}"));
    format!(
        "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {} | {} |",
        r.engine,
        r.precision,
        r.passages_per_s,
        r.tokens_per_s,
        r.query_ms_median,
        r.load_s,
        rss,
        cos
    )
}

/// The report as a Markdown table with the machine and settings above it.
pub fn format_table(report: &BenchReport) -> String {
    let mut out = format!(
        "CPU: {}\nthreads: {}, batch size: {}, model: {}, workload: {} ({} passages, {} tokens)\n\n{HEADER}\n",
        report.cpu,
        report.threads,
        report.batch_size,
        report.model,
        report.workload,
        report.rows.first().map_or(0, |r| r.passages),
        report.rows.first().map_or(0, |r| r.tokens),
    );
    for r in &report.rows {
        out.push_str(&format_row(r));
        out.push('\n');
    }
    out
}
