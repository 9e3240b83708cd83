//! `ann`: builds one HNSW engine over N synthetic 384-dim unit vectors, asks every row
//! for its nearest neighbours as stancemap does, checks recall@k against brute force
//! on a sample, and prints one JSON line with the timings and memory.

mod data;
mod engines;

use std::time::Instant;

use clap::{Parser, ValueEnum};
use rayon::prelude::*;
use serde_json::json;

use data::{dot, Data};
use engines::{Engine, Index, Params};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measure one approximate-nearest-neighbour engine on synthetic claim embeddings.
#[derive(Parser, Debug)]
struct Args {
    /// The crate to measure.
    #[arg(long, value_enum)]
    engine: Engine,
    /// Number of vectors.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Dimensions of each vector.
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Neighbours compared with the exact ones (recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Neighbours each row asks for in the all-rows pass (stancemap's ANN_NEIGHBOURS).
    #[arg(long, default_value_t = 64)]
    neighbours: usize,
    /// Queries whose results are checked against brute force.
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Seed of the data and of the sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Links per node (M; usearch's connectivity). instant-distance fixes it at 32.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// Candidates kept while building.
    #[arg(long, default_value_t = 100)]
    ef_construction: usize,
    /// Candidates kept while searching; raised to `neighbours + 1` if below.
    #[arg(long, default_value_t = 128)]
    ef_search: usize,
    /// usearch: store the vectors as bf16 (as stancemap does) instead of f32.
    #[arg(long)]
    bf16: bool,
    /// usearch: store the vectors as 8-bit integers instead (overrides --bf16).
    #[arg(long)]
    i8: bool,
}

fn main() {
    let args = Args::parse();
    let threads = rayon::current_num_threads();
    eprintln!("{args:?}, {threads} threads");

    let started = Instant::now();
    let data = data::generate(args.n, args.dim, args.seed);
    let gen_s = started.elapsed().as_secs_f64();
    eprintln!("data: {} × {} in {gen_s:.1} s", data.len(), data.dim);

    let params = Params {
        m: args.m,
        ef_construction: args.ef_construction,
        ef_search: args.ef_search.max(args.neighbours + 1),
        bf16: args.bf16,
        i8: args.i8,
    };
    let peak_reset = reset_peak_rss();
    let rss_before = rss_mib("VmRSS");
    let started = Instant::now();
    let index = engines::build(args.engine, &data, params);
    let build_s = started.elapsed().as_secs_f64();
    let peak_rss = rss_mib("VmHWM");
    let rss_growth = rss_mib("VmRSS").zip(rss_before).map(|(a, b)| a - b);
    let peak = peak_rss.unwrap_or(f64::NAN);
    eprintln!("build: {build_s:.1} s, peak RSS {peak:.0} MiB");

    let started = Instant::now();
    let found = query_all(index.as_ref(), &data, args.neighbours);
    let query_all_s = started.elapsed().as_secs_f64();
    eprintln!("all-rows pass: {query_all_s:.1} s, {found:.1} neighbours per row");

    let started = Instant::now();
    let sample = data::sample_rows(data.len(), args.sample, args.seed);
    let recall = recall_at_k(index.as_ref(), &data, &sample, args.k, args.k);
    let rescored = recall_at_k(index.as_ref(), &data, &sample, args.k, args.neighbours);
    eprintln!(
        "recall@{k}: {recall:.4}; of the {} re-scored: {rescored:.4} ({:.1} s)",
        args.neighbours,
        started.elapsed().as_secs_f64(),
        k = args.k,
    );

    let report = json!({
        "engine": args.engine.to_possible_value().map(|v| v.get_name().to_owned()),
        "n": data.len(),
        "dim": data.dim,
        "threads": threads,
        "gen_s": round(gen_s),
        "build_s": round(build_s),
        "query_all_s": round(query_all_s),
        "recall_at_k": round(recall),
        "recall_at_k_of_neighbours_rescored": round(rescored),
        "k": args.k,
        "sample": sample.len(),
        "neighbours": args.neighbours,
        "neighbours_found": round(found),
        "peak_rss_mib": peak_rss.map(round),
        "peak_rss_reset": peak_reset,
        "rss_before_build_mib": rss_before.map(round),
        "rss_growth_mib": rss_growth.map(round),
        "index_mib": index.memory_bytes().map(|b| round(b as f64 / MIB)),
        "params": index.params(),
    });
    println!("{report}");
}

const MIB: f64 = 1024.0 * 1024.0;

/// Three decimals are plenty for seconds, MiB and recall.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Every row asks for its `neighbours` nearest (plus itself), in parallel, as
/// stancemap's `approximate_pairs_above` does. Returns the mean count found besides
/// the row itself.
fn query_all(index: &dyn Index, data: &Data, neighbours: usize) -> f64 {
    let found: usize = (0..data.len())
        .into_par_iter()
        .map(|i| {
            let hits = index.search(data.row(i), neighbours + 1);
            hits.iter().filter(|&&j| j != i).count()
        })
        .sum();
    found as f64 / data.len().max(1) as f64
}

/// Mean share of each sampled row's exact `k` nearest rows (itself excluded) that
/// are among the `k` most similar, by exact product, of the index's first `asked`
/// results for the same row (itself excluded). With `asked = k` that is the index's
/// own recall@k; with `asked` = stancemap's 64 it is the recall of the neighbours
/// `cluster` keeps, which re-scores the index's results exactly.
fn recall_at_k(index: &dyn Index, data: &Data, sample: &[usize], k: usize, asked: usize) -> f64 {
    let truth = exact_nearest(data, sample, k);
    let hits: usize = sample
        .par_iter()
        .zip(&truth)
        .map(|(&q, truth)| {
            let mut found: Vec<(f32, usize)> = index
                .search(data.row(q), asked + 1)
                .into_iter()
                .filter(|&j| j != q)
                .take(asked)
                .map(|j| (dot(data.row(q), data.row(j)), j))
                .collect();
            found.sort_by(|x, y| y.0.total_cmp(&x.0));
            found
                .iter()
                .take(k)
                .filter(|(_, j)| truth.contains(j))
                .count()
        })
        .sum();
    hits as f64 / (sample.len() * k).max(1) as f64
}

/// Queries compared with each row while it is in cache, in the brute-force pass.
const QUERY_BLOCK: usize = 32;

/// For each of `queries`, the `k` rows most similar to it (besides itself), by brute
/// force: one pass over all rows per block of queries.
fn exact_nearest(data: &Data, queries: &[usize], k: usize) -> Vec<Vec<usize>> {
    queries
        .par_chunks(QUERY_BLOCK)
        .flat_map_iter(|block| {
            let mut tops = vec![TopK::new(k); block.len()];
            for (j, row) in data.rows().enumerate() {
                for (top, &q) in tops.iter_mut().zip(block) {
                    if j != q {
                        top.push(dot(data.row(q), row), j);
                    }
                }
            }
            tops.into_iter().map(TopK::rows)
        })
        .collect()
}

/// The `k` most similar rows seen so far, most similar first.
#[derive(Clone)]
struct TopK {
    k: usize,
    best: Vec<(f32, usize)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    fn push(&mut self, similarity: f32, row: usize) {
        if self.best.len() == self.k && self.best.last().is_none_or(|b| similarity <= b.0) {
            return;
        }
        let at = self.best.partition_point(|b| b.0 >= similarity);
        self.best.insert(at, (similarity, row));
        self.best.truncate(self.k);
    }

    fn rows(self) -> Vec<usize> {
        self.best.into_iter().map(|(_, row)| row).collect()
    }
}

/// Resets the process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0); false
/// where that is not possible, and the peak then counts from the start.
fn reset_peak_rss() -> bool {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    if !reset {
        eprintln!("could not reset the peak RSS: it counts from the process start");
    }
    reset
}

/// A `Vm…` field of /proc/self/status, in MiB.
fn rss_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked brute force agrees with sorting every similarity.
    #[test]
    fn exact_nearest_matches_a_full_sort() {
        let data = data::generate(500, 32, 3);
        let queries: Vec<usize> = (0..70).map(|i| i * 7).collect();
        for (&q, found) in queries.iter().zip(exact_nearest(&data, &queries, 5)) {
            let mut all: Vec<(f32, usize)> = (0..data.len())
                .filter(|&j| j != q)
                .map(|j| (dot(data.row(q), data.row(j)), j))
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0));
            let expected: Vec<usize> = all[..5].iter().map(|&(_, j)| j).collect();
            assert_eq!(found, expected);
        }
    }
}
