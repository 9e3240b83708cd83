//! The same-claim model's file: a logistic regression over the pair features
//! ([`FEATURES`]), the encoder it was fitted for (width and a probe embedding, so
//! a model fitted on another encoder is refused), and what the fit measured.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::pairs::{Features, FEATURES, TEXT_FEATURES};

/// The file format's name and version.
pub const FORMAT: &str = "stancemap-same-claim/1";

/// The text the probe embedding is of (as a passage).
pub const PROBE_TEXT: &str = "The probe sentence of the same-claim model: 稀土出口管制。";

/// The least cosine between the probe's embedding now and when fitted: every
/// precision of one encoder agrees far above it, another encoder far below.
const PROBE_AGREEMENT: f32 = 0.95;

/// The model shipped for multilingual-e5-small as published
/// (`models/same-claim/e5-small.json`).
pub const DEFAULT_MODEL: &str = include_str!("../../models/same-claim/e5-small.json");

/// The model shipped for multilingual-e5-small with the built-in adapter for
/// claims (`models/same-claim/e5-small-claims.json`).
pub const FOR_CLAIMS_MODEL: &str = include_str!("../../models/same-claim/e5-small-claims.json");

/// Why a same-claim model cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SameClaimError {
    #[error("cannot read the same-claim model {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the same-claim model {origin} is not valid: {why}")]
    Invalid { origin: String, why: String },
    #[error(
        "the same-claim model {origin} was fitted for another encoder ({why}); refit it \
         with `stancemap eval fit-same-claim` and pass it with --same-claim"
    )]
    OtherEncoder { origin: String, why: String },
}

/// How well the model's probabilities held on the part of a set it was not fitted on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub pairs: usize,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Expected calibration error over ten probability bins.
    pub ece: f64,
    pub average_precision: f64,
}

/// A fitted same-claim model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SameClaimModel {
    pub format: String,
    /// The encoder's name and width, and the probe's embedding under it.
    pub encoder: String,
    pub dim: usize,
    pub probe: Vec<f32>,
    /// The sha256 (hex) of the adapter the encoder ran with; none: as published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    pub features: Vec<String>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// The sets it was fitted on; their rows whose first text hashes into the
    /// calibration part (see [`super::fit::in_calibration_part`]) were kept apart.
    pub fitted_on: Vec<String>,
    pub calibration: BTreeMap<String, Calibration>,
    /// The command that refits it.
    pub refit: String,
}

/// The probability of log-odds `x`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl SameClaimModel {
    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, SameClaimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SameClaimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in model for the encoder as published.
    pub fn built_in() -> Self {
        Self::parse(DEFAULT_MODEL, "models/same-claim/e5-small.json").expect("the built-in model")
    }

    /// The built-in model for the encoder with the built-in adapter for claims.
    pub fn built_in_for_claims() -> Self {
        Self::parse(FOR_CLAIMS_MODEL, "models/same-claim/e5-small-claims.json")
            .expect("the built-in model")
    }

    /// Parses and checks a model; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SameClaimError> {
        let invalid = |why: String| SameClaimError::Invalid {
            origin: origin.to_string(),
            why,
        };
        let model: SameClaimModel =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if model.format != FORMAT {
            return Err(invalid(format!(
                "format {:?}, expected {FORMAT:?}",
                model.format
            )));
        }
        if model.features != FEATURES {
            return Err(invalid(format!(
                "its features {:?} are not this version's {FEATURES:?}",
                model.features
            )));
        }
        if model.weights.len() != FEATURES.len() || model.probe.len() != model.dim {
            return Err(invalid("weights or probe of the wrong length".into()));
        }
        let finite = model
            .weights
            .iter()
            .chain(&model.probe)
            .all(|w| w.is_finite());
        if !finite || !model.bias.is_finite() {
            return Err(invalid("a weight is not a finite number".into()));
        }
        Ok(model)
    }

    /// Checks that the encoder producing `probe` (the embedding of [`PROBE_TEXT`])
    /// with the adapter whose sha256 is `adapter` is the one the model was fitted for.
    pub fn check_encoder(
        &self,
        probe: &[f32],
        adapter: Option<&str>,
        origin: &str,
    ) -> Result<(), SameClaimError> {
        let other = |why: String| SameClaimError::OtherEncoder {
            origin: origin.to_string(),
            why,
        };
        if self.adapter.as_deref() != adapter {
            let name = |a: Option<&str>| a.map_or("none".to_string(), |a| format!("{:.12}…", a));
            return Err(other(format!(
                "it was fitted with the adapter {}, this encoder runs {}",
                name(self.adapter.as_deref()),
                name(adapter)
            )));
        }
        if probe.len() != self.dim {
            return Err(other(format!(
                "{} dimensions, this encoder gives {}",
                self.dim,
                probe.len()
            )));
        }
        let agreement: f32 = probe.iter().zip(&self.probe).map(|(a, b)| a * b).sum();
        if agreement < PROBE_AGREEMENT {
            return Err(other(format!(
                "{}; its probe sentence agrees at cosine {agreement:.3}",
                self.encoder
            )));
        }
        Ok(())
    }

    /// The log-odds of the features.
    pub fn logit(&self, f: &Features) -> f32 {
        self.bias + self.weights.iter().zip(f).map(|(w, x)| w * x).sum::<f32>()
    }

    /// The probability that a pair with features `f` states the same claim.
    pub fn probability(&self, f: &Features) -> f32 {
        sigmoid(self.logit(f))
    }

    /// The most the text features can add to a pair's log-odds (each lies in [0, 1]).
    pub fn largest_text_gain(&self) -> f32 {
        self.weights[TEXT_FEATURES].iter().map(|w| w.max(0.0)).sum()
    }
}

#[cfg(test)]
impl SameClaimModel {
    /// A model that reads the cosine alone: probability ½ at `at`, rising with `slope`.
    pub(crate) fn cosine_only(slope: f32, at: f32) -> Self {
        let mut weights = vec![0.0; FEATURES.len()];
        weights[0] = slope;
        SameClaimModel {
            format: FORMAT.into(),
            encoder: "test".into(),
            dim: 2,
            probe: vec![1.0, 0.0],
            adapter: None,
            features: FEATURES.iter().map(|f| f.to_string()).collect(),
            weights,
            bias: -slope * at,
            fitted_on: Vec::new(),
            calibration: BTreeMap::new(),
            refit: "test".into(),
        }
    }
}

/// The log-odds of probability `p`.
pub fn logit_of(p: f32) -> f32 {
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str) -> usize {
        FEATURES.iter().position(|f| *f == name).expect("a feature")
    }

    #[test]
    fn the_built_in_model_rises_with_the_cosine_in_every_language_pairing() {
        let m = SameClaimModel::built_in();
        let w = |name| m.weights[index(name)];
        // Raising a pair's cosine by d raises its centred cosine by k·d (k > 0,
        // one over the product of the two centred lengths), each "over
        // neighbours" feature by twice as much, and the pairing's interactions.
        for (across, chinese) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0)] {
            let plain = w("cosine")
                + 2.0 * w("cosine_over_neighbours")
                + across * w("cosine_across")
                + chinese * w("cosine_chinese");
            let centred = w("centred_cosine")
                + 2.0 * w("centred_over_neighbours")
                + across * w("centred_across")
                + chinese * w("centred_chinese");
            assert!(
                plain > 0.0 && centred > 0.0,
                "{across} {chinese}: {plain} {centred}"
            );
        }
        assert!(w("mutual_nearest") >= 0.0);
    }

    #[test]
    fn the_built_in_model_was_calibrated_on_the_part_kept_apart() {
        let m = SameClaimModel::built_in();
        assert_eq!(m.dim, 384);
        assert!(m.fitted_on.len() >= 5, "{:?}", m.fitted_on);
        for set in &m.fitted_on {
            let c = &m.calibration[set];
            assert!(c.pairs >= 100, "{set}: {c:?}");
            assert!(c.ece < 0.2 && c.brier < 0.3, "{set}: {c:?}");
        }
        let p = m.probability(&[0.5; FEATURES.len()]);
        assert!((0.0..=1.0).contains(&p));
    }

    #[test]
    fn bad_model_files_are_refused_with_their_name() {
        let text = DEFAULT_MODEL;
        let err = |t: &str| SameClaimModel::parse(t, "m.json").unwrap_err().to_string();
        assert!(err("{").starts_with("the same-claim model m.json is not valid"));
        let other_format = text.replace(FORMAT, "stancemap-same-claim/0");
        assert!(
            err(&other_format).contains("format"),
            "{}",
            err(&other_format)
        );
        let renamed = text.replace("\"word_overlap\"", "\"overlap\"");
        assert!(err(&renamed).contains("features"), "{}", err(&renamed));
        let m = SameClaimModel::built_in();
        let e = m
            .check_encoder(&[0.0; 768], None, "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.json") && e.contains("384 dimensions"), "{e}");
        let flipped: Vec<f32> = m.probe.iter().map(|x| -x).collect();
        let e = m
            .check_encoder(&flipped, None, "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("another encoder"), "{e}");
        assert!(m.check_encoder(&m.probe, None, "m.json").is_ok());
        let e = m
            .check_encoder(&m.probe, Some("0123456789abcdef"), "m.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fitted with the adapter none, this encoder runs 0123456789ab…"),
            "{e}"
        );
        let tuned = SameClaimModel::built_in_for_claims();
        assert!(tuned.adapter.is_some() && tuned.check_encoder(&tuned.probe, None, "t").is_err());
    }
}
