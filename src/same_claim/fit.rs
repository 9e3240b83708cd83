//! Fitting the same-claim model on labelled pair sets (the evaluation dev splits):
//! a quarter of each set's rows, chosen by a hash of the first text, is kept apart
//! to measure calibration; linfa's logistic regression is fitted on the rest, each
//! set weighing the same unless given another weight.

use std::collections::BTreeMap;

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use sha2::{Digest, Sha256};

use super::model::{Calibration, SameClaimModel, FORMAT};
use super::pairs::{Features, FEATURES};
use crate::error::{Error, Result};
use crate::eval::average_precision;

/// L2 penalty on the weights (on the summed loss; about scikit-learn's C = 1).
const PENALTY: f64 = 1.0;

/// One labelled pair set: each pair's features, whether it is the same claim,
/// and whether it is in the calibration part.
pub struct LabelledSet {
    pub name: String,
    pub features: Vec<Features>,
    pub same: Vec<bool>,
    pub calibration: Vec<bool>,
    /// The set's weight in the fit against the others' 1 (a set of noisy
    /// negatives, say, at a half).
    pub weight: f64,
}

/// Whether a row whose first text is `text1` belongs to the calibration part (a
/// quarter of the rows), never fitted on.
pub fn in_calibration_part(text1: &str) -> bool {
    Sha256::digest(text1.as_bytes())[0] % 4 == 0
}

/// The encoder a model is fitted for: its name, the probe's embedding, and the
/// sha256 of the adapter it runs with, if any.
pub struct EncoderIdentity {
    pub name: String,
    pub probe: Vec<f32>,
    pub adapter: Option<String>,
}

/// Fits the model on the sets' fitting parts and measures it on their
/// calibration parts. `refit` is the command that made it.
pub fn fit(sets: &[LabelledSet], encoder: EncoderIdentity, refit: &str) -> Result<SameClaimModel> {
    let (x, y) = fitting_rows(sets)?;
    let fitted = LogisticRegression::default()
        .alpha(PENALTY)
        .max_iterations(1000)
        .fit(&DatasetBase::new(x, y))
        .map_err(|e| Error::Fit(e.to_string()))?;
    // linfa names the rarer label positive; the model's odds are of `true`.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let mut model = SameClaimModel {
        format: FORMAT.to_string(),
        encoder: encoder.name,
        dim: encoder.probe.len(),
        probe: encoder.probe,
        adapter: encoder.adapter,
        features: FEATURES.iter().map(|f| f.to_string()).collect(),
        weights: fitted.params().iter().map(|&w| (sign * w) as f32).collect(),
        bias: (sign * fitted.intercept()) as f32,
        fitted_on: sets.iter().map(|s| s.name.clone()).collect(),
        calibration: BTreeMap::new(),
        refit: refit.to_string(),
    };
    model.calibration = sets
        .iter()
        .map(|s| (s.name.clone(), calibration(&model, s)))
        .collect();
    Ok(model)
}

/// The fitting parts of all sets, each set's rows repeated so that every set
/// counts about as much as the largest, times its weight.
fn fitting_rows(sets: &[LabelledSet]) -> Result<(Array2<f64>, Array1<bool>)> {
    let parts: Vec<Vec<usize>> = sets
        .iter()
        .map(|s| (0..s.same.len()).filter(|&i| !s.calibration[i]).collect())
        .collect();
    let largest = parts.iter().map(Vec::len).max().unwrap_or(0);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (set, part) in sets.iter().zip(&parts) {
        if part.is_empty() {
            return Err(Error::Fit(format!("{}: no rows to fit on", set.name)));
        }
        let repeats = ((largest as f64 * set.weight).round() as usize).max(1);
        for k in 0..repeats {
            let i = part[k % part.len()];
            x.extend(set.features[i].iter().map(|&f| f64::from(f)));
            y.push(set.same[i]);
        }
    }
    if y.iter().all(|&s| s) || y.iter().all(|&s| !s) {
        return Err(Error::Fit("the pairs need both labels".into()));
    }
    let x = Array2::from_shape_vec((y.len(), FEATURES.len()), x).expect("rows of features");
    Ok((x, Array1::from(y)))
}

/// Brier score, ten-bin calibration error and average precision of `model` on
/// `set`'s calibration part.
pub fn calibration(model: &SameClaimModel, set: &LabelledSet) -> Calibration {
    let rows: Vec<usize> = (0..set.same.len())
        .filter(|&i| set.calibration[i])
        .collect();
    let p: Vec<f32> = rows
        .iter()
        .map(|&i| model.probability(&set.features[i]))
        .collect();
    let same: Vec<bool> = rows.iter().map(|&i| set.same[i]).collect();
    let n = rows.len().max(1) as f64;
    let brier = p
        .iter()
        .zip(&same)
        .map(|(&p, &s)| (f64::from(p) - f64::from(u8::from(s))).powi(2))
        .sum::<f64>()
        / n;
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for (&p, &s) in p.iter().zip(&same) {
        let bin = &mut bins[((p * 10.0) as usize).min(9)];
        bin.0 += f64::from(p);
        bin.1 += f64::from(u8::from(s));
        bin.2 += 1;
    }
    let ece = bins.iter().map(|b| (b.0 - b.1).abs()).sum::<f64>() / n;
    Calibration {
        pairs: rows.len(),
        brier,
        ece,
        average_precision: average_precision(&p, &same),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs whose same-claim odds follow their cosine, the other features noise.
    fn synthetic(name: &str, n: usize, seed: u64) -> LabelledSet {
        let mut uniform = crate::random::uniform_from(seed);
        let mut set = LabelledSet {
            name: name.into(),
            features: Vec::new(),
            same: Vec::new(),
            calibration: Vec::new(),
            weight: 1.0,
        };
        for i in 0..n {
            let mut f = [0.0; FEATURES.len()];
            f.iter_mut().for_each(|x| *x = uniform());
            let p = 1.0 / (1.0 + (-(12.0 * f[0] - 6.0)).exp());
            set.same.push(uniform() < p);
            set.features.push(f);
            set.calibration.push(i % 4 == 0);
        }
        set
    }

    #[test]
    fn a_fitted_model_is_calibrated_on_the_part_kept_apart() {
        let sets = [synthetic("a", 2000, 7), synthetic("b", 1000, 11)];
        let identity = EncoderIdentity {
            name: "test".into(),
            probe: vec![1.0, 0.0],
            adapter: None,
        };
        let model = fit(&sets, identity, "test").unwrap();
        assert!(model.weights[0] > 8.0, "{:?}", model.weights);
        for c in model.calibration.values() {
            assert!(c.ece < 0.08, "{c:?}");
            assert!(c.brier < 0.2, "{c:?}");
        }
        let text = serde_json::to_string(&model).unwrap();
        let read = SameClaimModel::parse(&text, "m.json").unwrap();
        assert_eq!((read.weights, read.bias), (model.weights, model.bias));
    }

    #[test]
    fn a_set_weighs_by_its_weight() {
        let mut sets = [synthetic("a", 400, 7), synthetic("b", 200, 11)];
        let (x, _) = fitting_rows(&sets).unwrap();
        assert_eq!(x.nrows(), 2 * 300);
        sets[1].weight = 0.5;
        let (x, _) = fitting_rows(&sets).unwrap();
        assert_eq!(x.nrows(), 300 + 150);
    }

    #[test]
    fn the_calibration_part_is_a_quarter_and_fixed() {
        let part = (0..4000)
            .filter(|i| in_calibration_part(&format!("sentence {i}")))
            .count();
        assert!((900..1100).contains(&part), "{part}");
        assert_eq!(in_calibration_part("a"), in_calibration_part("a"));
    }
}
