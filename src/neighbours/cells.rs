//! Nearest neighbours by cells: the rows are split into k-means cells, and each
//! row is compared with every row of the [`PROBES`] cells whose centroids are
//! nearest it, by blocked matrix products. Where the CPU has AVX-512 VNNI the
//! products run on the encoder's packed 8-bit kernels (each cell packed once;
//! the neighbours found are re-scored in f32 by the caller), else as f32
//! products. A row's true neighbours lie in its nearest cells, and dense
//! products run near the CPU's peak, so at a million claims this finds more of
//! them, sooner, than the HNSW index (README, *Scale*).

use std::collections::HashMap;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::centroids::Centroids;
use super::Top;
use crate::embed::packed::{Format, PackedWeight};
use crate::error::Result;
use crate::observer::{Observer, Stage, StageProgress};

/// Cells each row is compared with: its own and the next nearest.
pub(crate) const PROBES: usize = 8;

/// Query rows multiplied against a cell at a time: a product of 256 × ~4,000
/// floats (4 MB) is reused by the allocator, where one of 1,024 rows took fresh
/// pages each time (100k claims: peak RSS 400 MiB against 560, time the same).
const BLOCK: usize = 256;

/// Each row's `K` nearest other rows of `emb` (unit rows) among the rows of its
/// [`PROBES`] nearest cells, as sorted row numbers; `observer` is told the progress.
pub(crate) fn nearest_in_cells<const K: usize>(
    emb: &Array2<f32>,
    observer: &dyn Observer,
) -> Result<Vec<Vec<u32>>> {
    nearest_in_cells_with::<K>(emb, Format::Int8.supported(), observer)
}

/// [`nearest_in_cells`], with products on the 8-bit kernels if `int8`.
fn nearest_in_cells_with<const K: usize>(
    emb: &Array2<f32>,
    int8: bool,
    observer: &dyn Observer,
) -> Result<Vec<Vec<u32>>> {
    let n = emb.nrows();
    let progress = StageProgress::new(observer, Stage::Indexing, n);
    let (cells, probes) = match Centroids::fit(emb)? {
        Some(centroids) => (centroids.len(), centroids.nearest(emb, PROBES)),
        None => (1, vec![0; n]),
    };
    let probes_per_row = PROBES.min(cells);
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); cells];
    for (row, nearest) in probes.chunks(probes_per_row).enumerate() {
        members[nearest[0] as usize].push(row as u32);
    }
    let products = CellProducts::new(emb, &members, int8);
    progress.advance(n);
    let progress = StageProgress::new(observer, Stage::Searching, n);
    let found: Vec<(u32, Vec<u32>)> = members
        .par_iter()
        .flat_map_iter(|home| {
            let probed = probed_cells(home, &probes, probes_per_row);
            let tops = search_cell::<K>(&products, home, &probed);
            progress.advance(home.len());
            home.iter().copied().zip(tops).collect::<Vec<_>>()
        })
        .collect();
    let mut nearest = vec![Vec::new(); n];
    for (row, keys) in found {
        nearest[row as usize] = keys;
    }
    Ok(nearest)
}

/// For the rows of one home cell: each cell they probe, with the rows (as
/// places in `home`) that probe it; the most probed first (the home cell), so
/// the nearest rows are seen early and most later products are passed over.
fn probed_cells(home: &[u32], probes: &[u32], per_row: usize) -> Vec<(u32, Vec<usize>)> {
    let mut probed: HashMap<u32, Vec<usize>> = HashMap::new();
    for (place, &row) in home.iter().enumerate() {
        let row = row as usize;
        for &cell in &probes[row * per_row..(row + 1) * per_row] {
            probed.entry(cell).or_default().push(place);
        }
    }
    let mut probed: Vec<_> = probed.into_iter().collect();
    probed.sort_unstable_by_key(|(cell, places)| (usize::MAX - places.len(), *cell));
    probed
}

/// The `K` nearest rows (sorted row numbers) of each row of `home` among the
/// rows of the cells it probes.
fn search_cell<const K: usize>(
    products: &CellProducts,
    home: &[u32],
    probed: &[(u32, Vec<usize>)],
) -> Vec<Vec<u32>> {
    let mut tops = vec![Top::<K>::new(); home.len()];
    for (cell, places) in probed {
        let cell = *cell as usize;
        let cell_rows = &products.members[cell];
        if cell_rows.is_empty() {
            continue;
        }
        let operand = products.operand(cell);
        for block in places.chunks(BLOCK) {
            let queries: Vec<usize> = block.iter().map(|&p| home[p] as usize).collect();
            let sims = operand.times(&products.emb.select(Axis(0), &queries));
            for ((&place, &row), sim) in block.iter().zip(&queries).zip(sims.rows()) {
                let sim = sim.as_slice().expect("contiguous products");
                keep_largest(&mut tops[place], sim, cell_rows, row);
            }
        }
    }
    tops.iter()
        .map(|top| {
            let mut keys: Vec<u32> = top.seen().map(|(_, r)| r as u32).collect();
            keys.sort_unstable();
            keys
        })
        .collect()
}

/// Values compared with a top's floor at a time, before any is pushed.
const RUN: usize = 16;

/// Pushes the products `sim` with `rows` (all but `row` itself) into `top`,
/// passing over runs where none beats its floor (most, once the home cell is in).
fn keep_largest<const K: usize>(top: &mut Top<K>, sim: &[f32], rows: &[u32], row: usize) {
    for (run, run_rows) in sim.chunks(RUN).zip(rows.chunks(RUN)) {
        let floor = top.floor();
        if !run.iter().fold(false, |any, &s| any | (s > floor)) {
            continue;
        }
        for (&s, &other) in run.iter().zip(run_rows) {
            if other as usize != row {
                top.push(s, other as usize);
            }
        }
    }
}

/// The cells' rows, and how products with them are computed.
struct CellProducts<'a> {
    emb: &'a Array2<f32>,
    members: &'a [Vec<u32>],
    /// Each cell's rows packed for the 8-bit kernels (`None`: f32 products).
    packed: Option<Vec<PackedWeight>>,
}

impl<'a> CellProducts<'a> {
    /// Products with the cells `members` of `emb`, on the 8-bit kernels if `int8`.
    fn new(emb: &'a Array2<f32>, members: &'a [Vec<u32>], int8: bool) -> Self {
        let packed = int8.then(|| {
            members
                .par_iter()
                .map(|rows| {
                    let rows = select(emb, rows);
                    let flat = rows.as_slice().expect("selected rows are contiguous");
                    PackedWeight::pack(Format::Int8, flat, &vec![0.0; rows.nrows()], emb.ncols())
                })
                .collect()
        });
        CellProducts {
            emb,
            members,
            packed,
        }
    }

    /// The rows of `cell` as products take them: packed, or copied once for all
    /// the blocks of queries that probe it.
    fn operand(&self, cell: usize) -> CellOperand<'_> {
        match &self.packed {
            Some(packed) => CellOperand::Packed(&packed[cell]),
            None => CellOperand::Rows(select(self.emb, &self.members[cell])),
        }
    }
}

/// One cell's rows, ready for products with query rows.
enum CellOperand<'a> {
    Packed(&'a PackedWeight),
    Rows(Array2<f32>),
}

impl CellOperand<'_> {
    /// The products of `queries` with the cell's rows (queries × cell rows).
    fn times(&self, queries: &Array2<f32>) -> Array2<f32> {
        match self {
            CellOperand::Packed(packed) => {
                let flat = queries.as_slice().expect("selected rows are contiguous");
                let sims = packed.matmul(flat, queries.nrows());
                let columns = sims.len() / queries.nrows().max(1);
                Array2::from_shape_vec((queries.nrows(), columns), sims)
                    .expect("one product per query and row")
            }
            CellOperand::Rows(rows) => queries.dot(&rows.t()),
        }
    }
}

/// A copy of `rows` of `emb`.
fn select(emb: &Array2<f32>, rows: &[u32]) -> Array2<f32> {
    let rows: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
    emb.select(Axis(0), &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_find_their_group_in_their_nearest_cells_with_either_product() {
        // 40,000 rows: ten cells, of which each row probes eight.
        let emb = super::super::near_duplicates(10_000, 4, 32, 0.05);
        let centroids = Centroids::fit(&emb).unwrap().unwrap();
        assert!(centroids.len() > PROBES, "{} cells", centroids.len());
        for int8 in [false, Format::Int8.supported()] {
            let nearest = nearest_in_cells_with::<4>(&emb, int8, &crate::Silent).unwrap();
            let missed = (0..emb.nrows())
                .filter(|&row| {
                    let group = (row / 4 * 4..row / 4 * 4 + 4).filter(|&r| r != row);
                    !group
                        .into_iter()
                        .all(|r| nearest[row].contains(&(r as u32)))
                })
                .count();
            assert!(
                missed < 40,
                "int8 {int8}: {missed} rows missed a group member"
            );
            assert!(nearest
                .iter()
                .all(|keys| keys.len() == 4 && keys.is_sorted()));
        }
    }

    #[test]
    fn rows_with_two_distinct_values_leave_cells_empty_and_still_find_their_copies() {
        // k-means gets three centroids for two distinct rows, so a cell is empty.
        let mut emb = Array2::zeros((12_000, 16));
        for (r, mut row) in emb.rows_mut().into_iter().enumerate() {
            row[r % 2] = 1.0;
        }
        for int8 in [false, Format::Int8.supported()] {
            let nearest = nearest_in_cells_with::<8>(&emb, int8, &crate::Silent).unwrap();
            for (row, keys) in nearest.iter().enumerate() {
                assert_eq!(keys.len(), 8);
                assert!(keys
                    .iter()
                    .all(|&k| k as usize % 2 == row % 2 && k as usize != row));
            }
        }
    }
}
