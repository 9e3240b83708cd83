//! The few largest values of a stream, with whose they are: a claim's nearest
//! neighbours, a query's true nearest rows.

/// Keeps the `N` largest values seen (with whose they are), largest first.
#[derive(Clone, Copy)]
pub(crate) struct Top<const N: usize>([(f32, usize); N]);

impl<const N: usize> Top<N> {
    /// Nothing seen yet.
    pub(crate) fn new() -> Self {
        Top([(f32::NEG_INFINITY, usize::MAX); N])
    }

    /// Keeps `x` (of `who`) if it is among the `N` largest so far.
    pub(crate) fn push(&mut self, x: f32, who: usize) {
        if x <= self.0[N - 1].0 {
            return;
        }
        let mut k = N - 1;
        while k > 0 && self.0[k - 1].0 < x {
            self.0[k] = self.0[k - 1];
            k -= 1;
        }
        self.0[k] = (x, who);
    }

    /// The value a new one must beat to be kept (−∞ until `N` are seen).
    pub(crate) fn floor(&self) -> f32 {
        self.0[N - 1].0
    }

    /// The largest value seen (−∞ before any).
    pub(crate) fn largest(&self) -> f32 {
        self.0[0].0
    }

    /// The values kept, largest first, with whose they are.
    pub(crate) fn seen(&self) -> impl Iterator<Item = (f32, usize)> + '_ {
        self.0.iter().copied().filter(|x| x.1 != usize::MAX)
    }

    /// The mean of the `k` largest values kept (fewer when fewer were seen; 0 for
    /// none).
    pub(crate) fn mean_of(&self, k: usize) -> f32 {
        let (sum, count) = self
            .seen()
            .take(k)
            .fold((0.0, 0), |(s, c), x| (s + x.0, c + 1));
        sum / count.max(1) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_keeps_the_largest_first() {
        let mut top = Top::<3>::new();
        for (who, x) in [0.2, 0.9, 0.5, 0.7, 0.1].into_iter().enumerate() {
            top.push(x, who);
        }
        assert_eq!(top.0, [(0.9, 1), (0.7, 3), (0.5, 2)]);
        let mut one = Top::<3>::new();
        one.push(0.4, 0);
        assert_eq!(one.mean_of(3), 0.4);
        assert!((top.mean_of(2) - 0.8).abs() < 1e-6);
    }
}
