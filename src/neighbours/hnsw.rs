//! Nearest neighbours from an HNSW index (usearch, its vectors stored as bf16),
//! so the cost grows near n·log n; rows are added and searched in a [`Plan`]'s
//! order.

use ndarray::Array2;
use rayon::prelude::*;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::order::Plan;
use crate::error::{Error, Result};
use crate::observer::{Observer, Stage, StageProgress};

/// The index's graph: links per node (twice as many on the lowest layer), and the
/// candidates kept while adding and while searching (usearch's `connectivity`,
/// `expansion_add`, `expansion_search`); measured in benches/ann (README, *Scale*):
/// with bf16 vectors, searching 256 candidates instead of 128 lifts recall@10 from
/// 0.967 to 0.984 at 100k for 1.6× the search time.
const LINKS: usize = 16;
const EF_CONSTRUCTION: usize = 100;
const EF_SEARCH: usize = 256;

fn index_error(e: cxx::Exception) -> Error {
    Error::Index(e.what().to_string())
}

/// Each row's `k` nearest other rows of `emb` (unit rows) in an HNSW index, as
/// sorted row numbers; rows go in and are searched as `plan` says, and
/// `observer` is told the progress.
pub(crate) fn nearest_in_index(
    emb: &Array2<f32>,
    k: usize,
    plan: &Plan,
    observer: &dyn Observer,
) -> Result<Vec<Vec<u32>>> {
    let index = build_index(emb, &plan.phases, observer)?;
    let progress = StageProgress::new(observer, Stage::Searching, emb.nrows());
    let found: Vec<Vec<u32>> = plan
        .search
        .par_iter()
        .map(|&i| {
            progress.advance(1);
            let row = emb.row(i as usize);
            let found = index.search(row.as_slice().expect("contiguous rows"), k + 1);
            let mut keys: Vec<u32> = found
                .map_err(index_error)?
                .keys
                .into_iter()
                .map(|key| key as u32)
                .filter(|&key| key != i)
                .collect();
            keys.sort_unstable();
            Ok(keys)
        })
        .collect::<Result<_>>()?;
    let mut nearest = vec![Vec::new(); emb.nrows()];
    for (&i, keys) in plan.search.iter().zip(found) {
        nearest[i as usize] = keys;
    }
    Ok(nearest)
}

/// An HNSW index over every row of `emb` (inner product; rows added phase after
/// phase, in parallel within a phase).
fn build_index(emb: &Array2<f32>, phases: &[Vec<u32>], observer: &dyn Observer) -> Result<Index> {
    let options = IndexOptions {
        dimensions: emb.ncols(),
        metric: MetricKind::IP,
        quantization: ScalarKind::BF16,
        connectivity: LINKS,
        expansion_add: EF_CONSTRUCTION,
        expansion_search: EF_SEARCH,
        multi: false,
    };
    let index = Index::new(&options).map_err(index_error)?;
    index
        .reserve_capacity_and_threads(emb.nrows(), rayon::current_num_threads())
        .map_err(index_error)?;
    let progress = StageProgress::new(observer, Stage::Indexing, emb.nrows());
    for phase in phases {
        phase.par_iter().try_for_each(|&i| {
            let row = emb.row(i as usize);
            let row = row.as_slice().expect("contiguous rows");
            index.add(u64::from(i), row).map_err(index_error)?;
            progress.advance(1);
            Ok::<(), Error>(())
        })?;
    }
    Ok(index)
}
