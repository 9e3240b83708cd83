//! The features of a claim pair, from the corpus they belong to. Embeddings are
//! compared after the Chinese rows are moved by the language offset; also after
//! **centring** (the corpus's mean direction, what every claim shares because the
//! corpus is about one story, taken away), and against each claim's own nearest
//! neighbours (a pair that stands out from both claims' neighbourhoods is likelier
//! the same point than one as close as everything else is). To these the claims'
//! texts add word overlap, word order, shared figures, and length.

use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;

use super::signals::TextSignals;
use crate::align::LanguageOffset;
use crate::corpus::Lang;
use crate::error::Result;
use crate::neighbours::{
    approximate_pairs_above, for_each_row, ApproximateSearch, Pair, Top, EXACT_LIMIT,
};
use crate::observer::{Observer, Silent};

/// The features' names, in the order [`ClaimPairs::features`] gives them.
pub const FEATURES: [&str; 17] = [
    "cosine",
    "centred_cosine",
    "across_languages",
    "both_chinese",
    "cosine_across",
    "cosine_chinese",
    "centred_across",
    "centred_chinese",
    "cosine_over_neighbours",
    "centred_over_neighbours",
    "mutual_nearest",
    "word_overlap",
    "order_overlap",
    "figures_shared",
    "figures_clash",
    "figures_shared_across",
    "log_shorter_length",
];

/// Where the text features start in [`FEATURES`] (each lies in [0, 1]).
const WORD_OVERLAP: usize = 11;
/// The last feature, the shorter claim's log length.
const LOG_SHORTER_LENGTH: usize = FEATURES.len() - 1;
/// Features read from the texts (indices into [`FEATURES`]).
pub const TEXT_FEATURES: std::ops::Range<usize> = WORD_OVERLAP..LOG_SHORTER_LENGTH;

/// A pair's features, in [`FEATURES`] order.
pub type Features = [f32; FEATURES.len()];

/// Neighbours whose mean makes a claim's neighbourhood level.
const NEIGHBOURHOOD: usize = 3;

/// A claim's nearest neighbours' similarities: the nearest, and the mean of the
/// [`NEIGHBOURHOOD`] nearest, in the moved and the centred space.
#[derive(Debug, Clone, Copy)]
struct Neighbourhood {
    nearest: f32,
    moved: f32,
    centred: f32,
}

/// A corpus's claims, ready to compare in pairs.
pub struct ClaimPairs {
    /// Unit rows, Chinese ones moved next to English by the offset.
    moved: Array2<f32>,
    /// Each moved row's product with the corpus mean, and its length once centred.
    to_mean: Vec<f32>,
    centred_norms: Vec<f32>,
    mean_norm2: f32,
    shares: Vec<f32>,
    neighbourhoods: Vec<Neighbourhood>,
    nearest: Vec<Vec<usize>>,
    /// Above the exact limit: the approximate search's neighbour pairs, the
    /// only pairs scored (searched once).
    candidates: Option<Vec<Pair>>,
    signals: Vec<TextSignals>,
}

/// The share of the offset a row in `lang` gets.
fn share(lang: Lang) -> f32 {
    match lang {
        Lang::Zh => 1.0,
        Lang::Mixed => 0.5,
        Lang::En => 0.0,
    }
}

/// Nearest neighbours kept per claim, where the grouping's refinement looks for
/// a better group.
const NEAREST: usize = 8;

/// English claims `claim 0`, `claim 1`, … with embeddings `emb`, compared as they
/// are (for tests).
#[cfg(test)]
pub(crate) fn numbered_claims(emb: Array2<f32>) -> ClaimPairs {
    let texts: Vec<String> = (0..emb.nrows()).map(|i| format!("claim {i}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    ClaimPairs::new(emb, &texts, &vec![Lang::En; texts.len()], None).expect("exact pairs")
}

/// How [`ClaimPairs`] finds each claim's neighbours: exact products up to
/// `exact_limit` claims, the approximate search above it, whose progress
/// `observer` is told.
#[derive(Clone, Copy)]
pub struct NeighbourSearch<'a> {
    pub exact_limit: usize,
    /// How neighbours are found above the exact limit.
    pub approximate: ApproximateSearch,
    pub observer: &'a dyn Observer,
}

impl Default for NeighbourSearch<'_> {
    /// [`EXACT_LIMIT`], told to no one.
    fn default() -> Self {
        NeighbourSearch {
            exact_limit: EXACT_LIMIT,
            approximate: ApproximateSearch::default(),
            observer: &Silent,
        }
    }
}

impl ClaimPairs {
    /// For the claims `texts` in `langs` with embeddings `emb` (unit rows, taken
    /// over as the compared space); the offset moves Chinese rows (none: rows are
    /// compared as they are). Fails only when the approximate search (above
    /// [`EXACT_LIMIT`] claims) cannot be built.
    pub fn new(
        emb: Array2<f32>,
        texts: &[&str],
        langs: &[Lang],
        offset: Option<&LanguageOffset>,
    ) -> Result<Self> {
        Self::with_search(emb, texts, langs, offset, NeighbourSearch::default())
    }

    /// [`new`](Self::new), with neighbours found as `search` says.
    pub fn with_search(
        emb: Array2<f32>,
        texts: &[&str],
        langs: &[Lang],
        offset: Option<&LanguageOffset>,
        search: NeighbourSearch,
    ) -> Result<Self> {
        let shares: Vec<f32> = langs.iter().map(|&l| share(l)).collect();
        let dim = emb.ncols();
        let mut moved = emb;
        if let Some(offset) = offset {
            for (mut row, &s) in moved.rows_mut().into_iter().zip(&shares) {
                if s != 0.0 {
                    row.scaled_add(s, offset.vector());
                    let norm = row.dot(&row).sqrt().max(1e-12);
                    row /= norm;
                }
            }
        }
        let candidates = (moved.nrows() > search.exact_limit)
            .then(|| approximate_pairs_above(&moved, -1.0, search.approximate, search.observer))
            .transpose()?;
        let mean: Array1<f32> = moved
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(dim));
        let mean_norm2 = mean.dot(&mean);
        let to_mean = moved.dot(&mean).to_vec();
        let centred_norms = to_mean
            .iter()
            .map(|&p| (1.0 - 2.0 * p + mean_norm2).max(1e-12).sqrt())
            .collect();
        let signals = texts
            .par_iter()
            .zip(langs)
            .map(|(t, &l)| TextSignals::read(t, l))
            .collect();
        let mut pairs = ClaimPairs {
            moved,
            to_mean,
            centred_norms,
            mean_norm2,
            shares,
            neighbourhoods: Vec::new(),
            nearest: Vec::new(),
            candidates,
            signals,
        };
        (pairs.neighbourhoods, pairs.nearest) = pairs.measure_neighbourhoods();
        Ok(pairs)
    }

    /// How many claims.
    pub fn len(&self) -> usize {
        self.moved.nrows()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The moved rows: one space for every language (the map, DBSCAN).
    pub fn moved(&self) -> &Array2<f32> {
        &self.moved
    }

    /// The cosine of two claims' moved rows.
    pub fn cosine(&self, a: usize, b: usize) -> f32 {
        self.moved.row(a).dot(&self.moved.row(b))
    }

    /// The cosine of `a` and `b` after centring, from their moved `cosine`.
    fn centred(&self, a: usize, b: usize, cosine: f32) -> f32 {
        (cosine - self.to_mean[a] - self.to_mean[b] + self.mean_norm2)
            / (self.centred_norms[a] * self.centred_norms[b])
    }

    /// Each claim's `NEAREST` (8) nearest neighbours (by moved cosine).
    pub fn nearest(&self) -> &[Vec<usize>] {
        &self.nearest
    }

    /// The approximate index's neighbour pairs (`None` up to the exact limit,
    /// [`EXACT_LIMIT`] by default, where every pair is compared).
    pub fn candidates(&self) -> Option<&[Pair]> {
        self.candidates.as_deref()
    }

    /// Every claim's neighbourhood and nearest neighbours: exact up to
    /// [`EXACT_LIMIT`] claims, from the approximate search's neighbours above.
    fn measure_neighbourhoods(&self) -> (Vec<Neighbourhood>, Vec<Vec<usize>>) {
        let n = self.len();
        let mut tops = vec![(Top::<NEAREST>::new(), Top::<NEIGHBOURHOOD>::new()); n];
        let mut see = |a: usize, b: usize, cosine: f32| {
            let centred = self.centred(a, b, cosine);
            tops[a].0.push(cosine, b);
            tops[a].1.push(centred, b);
        };
        match &self.candidates {
            None => for_each_row(self.moved.view(), |a, row| {
                for (b, &cosine) in row.iter().enumerate().filter(|&(b, _)| b != a) {
                    see(a, b, cosine);
                }
            }),
            Some(pairs) => {
                for p in pairs {
                    let (a, b) = p.rows();
                    see(a, b, p.similarity);
                    see(b, a, p.similarity);
                }
            }
        }
        tops.into_iter()
            .map(|(moved, centred)| {
                let neighbourhood = Neighbourhood {
                    nearest: moved.largest(),
                    moved: moved.mean_of(NEIGHBOURHOOD),
                    centred: centred.mean_of(NEIGHBOURHOOD),
                };
                (neighbourhood, moved.seen().map(|x| x.1).collect())
            })
            .unzip()
    }

    /// Whether `a` and `b` are copies: the same text, case and spacing aside.
    pub fn copies(&self, a: usize, b: usize) -> bool {
        self.signals[a].same_wording(&self.signals[b])
    }

    /// Whether `a` and `b` are in different languages.
    pub fn crosses(&self, a: usize, b: usize) -> bool {
        self.shares[a] != self.shares[b]
    }

    /// The features of `a` and `b` that need no text, and their moved `cosine`
    /// (the text features are left 0; see [`add_text_features`](Self::add_text_features)).
    pub fn embedding_features(&self, a: usize, b: usize, cosine: f32) -> Features {
        let centred = self.centred(a, b, cosine);
        let across = f32::from(self.crosses(a, b));
        let chinese = f32::from(self.shares[a] == 1.0 && self.shares[b] == 1.0);
        let (na, nb) = (&self.neighbourhoods[a], &self.neighbourhoods[b]);
        let mutual = cosine >= na.nearest - 1e-6 && cosine >= nb.nearest - 1e-6;
        let shorter = self.signals[a].chars.min(self.signals[b].chars);
        let mut f = [0.0; FEATURES.len()];
        f[..WORD_OVERLAP].copy_from_slice(&[
            cosine,
            centred,
            across,
            chinese,
            cosine * across,
            cosine * chinese,
            centred * across,
            centred * chinese,
            2.0 * cosine - na.moved - nb.moved,
            2.0 * centred - na.centred - nb.centred,
            f32::from(mutual),
        ]);
        f[LOG_SHORTER_LENGTH] = (shorter as f32 + 1.0).ln();
        f
    }

    /// Fills in the text features of `a` and `b`: within one language word overlap
    /// and word order; figures in any.
    pub fn add_text_features(&self, a: usize, b: usize, f: &mut Features) {
        let (sa, sb) = (&self.signals[a], &self.signals[b]);
        let across = self.crosses(a, b);
        let agree = sa.figures_agree(sb);
        let shared = f32::from(agree == Some(true));
        let text = [
            if across { 0.0 } else { sa.word_overlap(sb) },
            if across { 0.0 } else { sa.order_overlap(sb) },
            shared,
            f32::from(agree == Some(false)),
            shared * f32::from(across),
        ];
        f[TEXT_FEATURES].copy_from_slice(&text);
    }

    /// Every feature of `a` and `b`.
    pub fn features(&self, a: usize, b: usize) -> Features {
        let mut f = self.embedding_features(a, b, self.cosine(a, b));
        self.add_text_features(a, b, &mut f);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn centring_takes_the_shared_direction_away() {
        // Three claims leaning one way: raw cosines are high, centred ones are not.
        let emb = array![[0.9f32, 0.436, 0.0], [0.9, 0.0, 0.436], [0.9, -0.436, 0.0]];
        let texts = ["one", "two", "three"];
        let pairs = ClaimPairs::new(emb, &texts, &[Lang::En; 3], None).unwrap();
        let f = pairs.features(0, 1);
        assert!((f[0] - 0.81).abs() < 1e-3, "{}", f[0]);
        assert!(f[1] < 0.1, "{}", f[1]);
        assert_eq!((f[2], f[3]), (0.0, 0.0));
        // Claim 0's neighbours are 1 (0.81) and 2 (0.62): 0–1 is its nearest, and
        // 1's nearest too, so the pair is mutual.
        assert_eq!(f[10], 1.0);
        assert_eq!(pairs.features(0, 2)[10], 0.0);
    }
}
