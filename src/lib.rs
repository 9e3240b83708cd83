//! stancemap: reads Chinese and English news, splits it into claims, embeds them
//! with a multilingual encoder, groups the claims that say the same thing, lists
//! duplicates and labels stance toward a target position.
//!
//! The front door is [`Engine`]: build it once (the model is loaded, or fetched
//! when missing), then embed texts, analyse a [`Corpus`] into a [`Report`], list
//! duplicates or score stance. Progress and notices go to an [`Observer`] you
//! pass; by default the library is silent, and it never prints.
//!
//! ```no_run
//! use stancemap::{Corpus, Engine, Precision};
//!
//! let engine = Engine::builder().precision(Precision::Q8).build()?;
//! let corpus = Corpus::read(&["seeds/".into()])?;
//! let report = engine.analyse(&corpus)?;
//! report.write(std::path::Path::new("out"))?;
//! # Ok::<(), stancemap::Error>(())
//! ```
//!
//! The stages, one module each (see `docs/ARCHITECTURE.md`): [`corpus`] →
//! embedding (with [`model`] for where weights come from and a cache of known
//! texts) → [`align`] (Chinese next to English) → neighbours → [`cluster`] (with
//! keywords) → [`stance`] → [`report`] (and [`tables`], the same as Parquet).
//! [`input`]/[`output`] read and write passages and vectors, [`serve`] is the
//! HTTP server, [`eval`] and [`bench`](mod@bench) measure quality and speed (and
//! how the grouping scales), [`compare`] speed against other engines.

pub mod align;
pub mod bench;
mod cache;
pub mod cluster;
pub mod compare;
pub mod corpus;
pub mod cpu;
mod embed;
mod engine;
mod error;
pub mod eval;
mod figures;
pub mod input;
mod keywords;
mod memory;
pub mod model;
mod money;
mod neighbours;
mod observer;
pub mod output;
mod pipeline;
mod random;
pub mod report;
pub mod same_claim;
pub mod serve;
pub mod stance;
pub mod tables;
pub mod tune;

pub use cluster::{Agglomerative, Algorithm, Dbscan, Hdbscan};
pub use corpus::Corpus;
pub use embed::{Precision, Role};
pub use engine::{
    AdapterSource, AlignmentSource, CacheLocation, Engine, EngineBuilder, EngineSettings,
    ReaderSource, SameClaimSource, DEFAULT_CUT, DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_MAX_DISTANCE,
    DEFAULT_MAX_DISTANCE_FOR_CLAIMS,
};
pub use error::{Error, Result};
pub use observer::{Event, Observer, Silent, Stage};
pub use pipeline::ClusterOptions;
pub use report::Report;
pub use stance::ScorerKind;
