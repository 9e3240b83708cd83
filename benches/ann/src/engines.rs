//! The three HNSW crates behind one small interface: build over all rows (both
//! threads), then search from many threads at once. Distances are cosine distances
//! (1 − dot) on unit vectors in every engine.

use std::cell::RefCell;

use clap::ValueEnum;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::data::{dot, Data};

/// Which crate to measure.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Engine {
    /// `usearch` (C++ via cxx), f32 vectors, inner-product metric.
    #[value(name = "usearch")]
    Usearch,
    /// `hnsw_rs`, with the same dot kernel as the project.
    #[value(name = "hnsw_rs")]
    HnswRs,
    /// `instant-distance`, as src/neighbours.rs uses it.
    #[value(name = "instant-distance")]
    InstantDistance,
}

/// Graph parameters, named as in the HNSW paper.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Links per node on the upper layers (twice as many on layer 0).
    pub m: usize,
    /// Candidates kept while inserting.
    pub ef_construction: usize,
    /// Candidates kept while searching (raised to the count asked for where smaller).
    pub ef_search: usize,
    /// usearch only: vectors stored as bf16 instead of f32.
    pub bf16: bool,
    /// usearch only: vectors stored as 8-bit integers (unit rows scaled by 127).
    pub i8: bool,
}

/// A built index.
pub trait Index: Sync {
    /// Rows nearest to `query`, nearest first, at most `count` of them.
    fn search(&self, query: &[f32], count: usize) -> Vec<usize>;

    /// Bytes the crate reports for the index, where it reports them.
    fn memory_bytes(&self) -> Option<usize> {
        None
    }

    /// The parameters in effect, for the report.
    fn params(&self) -> Value;
}

/// Builds `engine`'s index over every row of `data`, in parallel.
pub fn build(engine: Engine, data: &Data, params: Params) -> Box<dyn Index> {
    match engine {
        Engine::Usearch => Box::new(Usearch::build(data, params)),
        Engine::HnswRs => Box::new(HnswRs::build(data, params)),
        Engine::InstantDistance => Box::new(InstantDistance::build(data, params)),
    }
}

struct Usearch {
    index: usearch::Index,
}

impl Usearch {
    fn build(data: &Data, params: Params) -> Self {
        let options = usearch::IndexOptions {
            dimensions: data.dim,
            metric: usearch::MetricKind::IP,
            quantization: if params.i8 {
                usearch::ScalarKind::I8
            } else if params.bf16 {
                usearch::ScalarKind::BF16
            } else {
                usearch::ScalarKind::F32
            },
            connectivity: params.m,
            expansion_add: params.ef_construction,
            expansion_search: params.ef_search,
            multi: false,
        };
        let index = usearch::Index::new(&options).expect("usearch index");
        // One thread slot per rayon worker: concurrent `add` and `search` are supported.
        index
            .reserve_capacity_and_threads(data.len(), rayon::current_num_threads())
            .expect("usearch reserve");
        (0..data.len())
            .into_par_iter()
            .for_each(|i| index.add(i as u64, data.row(i)).expect("usearch add"));
        Self { index }
    }
}

impl Index for Usearch {
    fn search(&self, query: &[f32], count: usize) -> Vec<usize> {
        let found = self.index.search(query, count).expect("usearch search");
        found.keys.into_iter().map(|k| k as usize).collect()
    }

    fn memory_bytes(&self) -> Option<usize> {
        Some(self.index.memory_usage())
    }

    fn params(&self) -> Value {
        json!({
            "m": self.index.connectivity(),
            "ef_construction": self.index.expansion_add(),
            "ef_search": self.index.expansion_search(),
            "metric": "ip",
            "quantization": format!("{:?}", self.index.scalar_kind()),
            "simd": self.index.hardware_acceleration(),
            "usearch_version": usearch::version(),
        })
    }
}

/// Cosine distance of unit vectors for `hnsw_rs`. (Its own `DistDot` is a scalar
/// loop without the `simdeez_f` feature, and asserts `1 − dot ≥ 0`, which rounding
/// can break when a row meets itself.)
#[derive(Clone, Copy, Default)]
struct CosineUnit;

impl hnsw_rs::anndists::dist::Distance<f32> for CosineUnit {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

struct HnswRs {
    index: hnsw_rs::hnsw::Hnsw<'static, f32, CosineUnit>,
    params: Params,
    max_layer: usize,
}

impl HnswRs {
    fn build(data: &Data, params: Params) -> Self {
        // The crate's own rule of thumb: ln(n) layers, at most 16.
        let max_layer = ((data.len() as f32).ln() as usize).clamp(1, 16);
        let index = hnsw_rs::hnsw::Hnsw::new(
            params.m,
            data.len(),
            max_layer,
            params.ef_construction,
            CosineUnit,
        );
        let rows: Vec<(&[f32], usize)> = data.rows().zip(0..).collect();
        // Inserts through rayon; each point's vector is copied into the index.
        index.parallel_insert_slice(&rows);
        Self {
            index,
            params,
            max_layer,
        }
    }
}

impl Index for HnswRs {
    fn search(&self, query: &[f32], count: usize) -> Vec<usize> {
        let found = self.index.search(query, count, self.params.ef_search);
        found.into_iter().map(|n| n.d_id).collect()
    }

    fn params(&self) -> Value {
        json!({
            "m": self.params.m,
            "ef_construction": self.params.ef_construction,
            "ef_search": self.params.ef_search,
            "max_layer": self.max_layer,
            "distance": "1 - dot (8-lane kernel)",
        })
    }
}

/// A unit vector as an `instant-distance` point, as in src/neighbours.rs.
#[derive(Clone)]
struct Unit(Vec<f32>);

impl instant_distance::Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

/// `instant-distance` fixes M at 32 (64 links on layer 0); only the ef values are set.
const INSTANT_DISTANCE_M: usize = 32;

struct InstantDistance {
    index: instant_distance::HnswMap<Unit, usize>,
    params: Params,
}

thread_local! {
    /// Per-thread search scratch (its visited set is sized to the index).
    static SCRATCH: RefCell<instant_distance::Search> = RefCell::default();
}

impl InstantDistance {
    fn build(data: &Data, params: Params) -> Self {
        let points: Vec<Unit> = data.rows().map(|r| Unit(r.to_vec())).collect();
        let rows: Vec<usize> = (0..points.len()).collect();
        // Builds through rayon inside the crate.
        let index = instant_distance::Builder::default()
            .seed(17)
            .ef_construction(params.ef_construction)
            .ef_search(params.ef_search)
            .build(points, rows);
        Self { index, params }
    }
}

impl Index for InstantDistance {
    /// The crate returns `ef_search` candidates whatever is asked; the first `count`
    /// are kept (so `count` above `ef_search` gets only `ef_search`).
    fn search(&self, query: &[f32], count: usize) -> Vec<usize> {
        let point = Unit(query.to_vec());
        SCRATCH.with_borrow_mut(|scratch| {
            self.index
                .search(&point, scratch)
                .take(count)
                .map(|item| *item.value)
                .collect()
        })
    }

    fn params(&self) -> Value {
        json!({
            "m": INSTANT_DISTANCE_M,
            "ef_construction": self.params.ef_construction,
            "ef_search": self.params.ef_search,
            "seed": 17,
        })
    }
}
