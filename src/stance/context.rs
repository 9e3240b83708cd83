//! A claim read with its surroundings: its embedding plus a weight times the mean
//! embedding of the claims around it in its article, renormalised. A claim such
//! as "This deal changes little" says nothing toward a target alone; the
//! sentences beside it say what "this" is.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, Axis};

/// Which claims around a claim count as its context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reach {
    /// Up to this many claims on either side, within the article.
    Neighbours(usize),
    /// Every other claim of the article.
    Article,
}

/// How a claim's stance is read: with `weight` × the mean of its context added
/// to its own embedding (0: the claim alone).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context {
    pub reach: Reach,
    pub weight: f32,
}

impl Context {
    /// The main job's default: each claim with its two claims on either side at
    /// full weight (best on both dev sets with text-level labels, FNC-1 and
    /// NLPCC-2016; README, *Stance in context*).
    pub const DEFAULT: Context = Context {
        reach: Reach::Neighbours(2),
        weight: 1.0,
    };

    /// The claim alone.
    pub const ALONE: Context = Context {
        reach: Reach::Neighbours(0),
        weight: 0.0,
    };

    /// The context rows of row `i` of the article holding rows `article`.
    fn around(&self, i: usize, article: &Range<usize>) -> Range<usize> {
        match self.reach {
            Reach::Neighbours(k) => {
                i.saturating_sub(k).max(article.start)..(i + k + 1).min(article.end)
            }
            Reach::Article => article.clone(),
        }
    }

    /// Each row of `emb` (unit claim embeddings, each article's claims in reading
    /// order in the rows `articles` lists) read in this context, unit length.
    pub fn apply(&self, emb: ArrayView2<f32>, articles: &[Range<usize>]) -> Array2<f32> {
        let mut out = emb.to_owned();
        if self.weight == 0.0 {
            return out;
        }
        for article in articles {
            for i in article.clone() {
                let others: Vec<usize> = self.around(i, article).filter(|&j| j != i).collect();
                if others.is_empty() {
                    continue;
                }
                let mean = emb.select(Axis(0), &others).mean_axis(Axis(0));
                let mut row = out.row_mut(i);
                if let Some(mean) = mean {
                    row.scaled_add(self.weight, &mean);
                }
                let norm = row.dot(&row).sqrt().max(1e-12);
                row /= norm;
            }
        }
        out
    }
}

impl FromStr for Reach {
    type Err = String;

    /// `article`, or a number of claims on either side.
    fn from_str(s: &str) -> Result<Reach, String> {
        match s {
            "article" => Ok(Reach::Article),
            n => n.parse().map(Reach::Neighbours).map_err(|_| {
                format!("`{s}` is neither `article` nor a number of claims on either side")
            }),
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.weight, self.reach) {
            (0.0, _) => f.write_str("claim alone"),
            (w, Reach::Neighbours(k)) => write!(f, "+ {w} × ±{k} claims"),
            (w, Reach::Article) => write!(f, "+ {w} × article"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_stays_inside_the_article_and_leaves_lone_claims_alone() {
        let emb = ndarray::array![[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]];
        let articles = [0..3, 3..4];
        let near = Context {
            reach: Reach::Neighbours(1),
            weight: 1.0,
        };
        let read = near.apply(emb.view(), &articles);
        // Row 0 takes row 1 alone: (1, 1) / √2; row 3 is alone in its article.
        let h = 0.5f32.sqrt();
        assert!((read[[0, 0]] - h).abs() < 1e-6 && (read[[0, 1]] - h).abs() < 1e-6);
        assert_eq!(read.row(3), emb.row(3));
        let whole = Context {
            reach: Reach::Article,
            weight: 1.0,
        };
        let read = whole.apply(emb.view(), &articles);
        // Row 1's article mean is (0.5, 0.5): (0.5, 1.5) normalised.
        let n = (0.25f32 + 2.25).sqrt();
        assert!((read[[1, 0]] - 0.5 / n).abs() < 1e-6);
        assert_eq!(Context::ALONE.apply(emb.view(), &articles), emb);
    }

    #[test]
    fn reaches_read_from_flags() {
        assert_eq!("article".parse(), Ok(Reach::Article));
        assert_eq!("3".parse(), Ok(Reach::Neighbours(3)));
        assert!("-1".parse::<Reach>().unwrap_err().contains("neither"));
    }
}
