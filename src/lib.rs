//! stancemap: reads Chinese and English news, embeds paragraphs and claims with a
//! multilingual encoder, groups overlapping claims, lists duplicates and labels
//! stance toward a target position.
//!
//! The pipeline runs one way, one module a stage (see `docs/ARCHITECTURE.md`):
//! [`corpus`] → [`embed`] (with [`model`] for where weights come from, [`cache`] to
//! skip known texts, [`align`] to bring Chinese next to English) → [`neighbours`] →
//! [`cluster`] (+ [`keywords`]) → [`stance`] → [`report`], wired by [`pipeline`]. [`input`]/[`output`] serve `stancemap embed`,
//! [`serve`] the HTTP server, [`eval`] and [`bench`](mod@bench) measure quality and speed, [`compare`] speed
//! against other engines.

pub mod align;
pub mod bench;
pub mod cache;
pub mod cluster;
pub mod compare;
pub mod corpus;
pub mod cpu;
pub mod embed;
pub mod eval;
pub mod input;
pub mod keywords;
pub mod model;
pub mod money;
pub mod neighbours;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod serve;
pub mod stance;
