//! Synthetic 384-dim "claim embeddings": unit vectors that share one topic, fall into
//! 50 subtopics and into small groups of near-duplicates, like the encoder's output on
//! a news corpus. Everything is derived from the seed, so every engine sees the same rows.

use rayon::prelude::*;

/// Subtopics the rows are spread over.
const SUBTOPICS: usize = 50;
/// Largest near-duplicate group; sizes are uniform in `1..=MAX_GROUP`.
const MAX_GROUP: u64 = 6;
/// Squared weights of topic, subtopic, group centre and own noise (they sum to 1),
/// so unrelated rows have cosine ≈ 0.6, same subtopic ≈ 0.75, same group ≈ 0.93.
const WEIGHTS_SQ: [f32; 4] = [0.60, 0.15, 0.18, 0.07];
/// Random streams (high bits) for groups and rows, apart from the shared one (0).
const GROUP_STREAM: u64 = 1 << 40;
const ROW_STREAM: u64 = 2 << 40;

/// `n` unit vectors of `dim` components, stored row after row.
pub struct Data {
    pub dim: usize,
    pub values: Vec<f32>,
}

impl Data {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// All rows, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.dim)
    }
}

/// xorshift64* seeded through SplitMix64, one independent stream per `(seed, stream)`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut z = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (the modulo bias is negligible for small `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `(0, 1]`.
    fn unit_interval(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Fills `out` with standard normal numbers (Box–Muller, two per draw).
    fn gaussians(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let radius = (-2.0 * self.unit_interval().ln()).sqrt();
            let angle = std::f64::consts::TAU * self.unit_interval();
            pair[0] = (radius * angle.cos()) as f32;
            if let Some(second) = pair.get_mut(1) {
                *second = (radius * angle.sin()) as f32;
            }
        }
    }

    /// A random direction in `dim` dimensions.
    fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let mut v = vec![0.0; dim];
        self.gaussians(&mut v);
        normalise(&mut v);
        v
    }
}

/// Scales `v` to unit length.
fn normalise(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// Dot product with eight independent sums, so the compiler vectorises it (the same
/// kernel as the project's `Unit::distance`).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `n` clustered unit vectors: row i is normalise(a·T + s·S_k + b·C_g + c·E_i), with
/// T the shared topic, S_k its group's subtopic, C_g its group's centre and E_i its own
/// noise. Group members are scattered over the rows (not adjacent).
pub fn generate(n: usize, dim: usize, seed: u64) -> Data {
    let mut shared = Rng::new(seed, 0);
    let topic = shared.unit_vector(dim);
    let subtopics: Vec<Vec<f32>> = (0..SUBTOPICS).map(|_| shared.unit_vector(dim)).collect();

    // Group label of every row: sizes drawn at random, then the labels shuffled.
    let mut labels: Vec<u64> = Vec::with_capacity(n);
    let mut group = 0;
    while labels.len() < n {
        let size = 1 + shared.below(MAX_GROUP) as usize;
        labels.extend(std::iter::repeat_n(group, size.min(n - labels.len())));
        group += 1;
    }
    for i in (1..n).rev() {
        labels.swap(i, shared.below(i as u64 + 1) as usize);
    }

    let [a, s, b, c] = WEIGHTS_SQ.map(f32::sqrt);
    let mut values = vec![0.0f32; n * dim];
    values
        .par_chunks_mut(dim)
        .zip(&labels)
        .enumerate()
        .for_each(|(i, (row, &g))| {
            // Each member re-derives its group's subtopic and centre from the group's stream.
            let mut group_rng = Rng::new(seed, GROUP_STREAM + g);
            let subtopic = &subtopics[group_rng.below(SUBTOPICS as u64) as usize];
            let centre = group_rng.unit_vector(dim);
            let noise = Rng::new(seed, ROW_STREAM + i as u64).unit_vector(dim);
            for (d, x) in row.iter_mut().enumerate() {
                *x = a * topic[d] + s * subtopic[d] + b * centre[d] + c * noise[d];
            }
            normalise(row);
        });
    Data { dim, values }
}

/// `count` distinct rows out of `n`, drawn from the seed.
pub fn sample_rows(n: usize, count: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed, 3 << 40);
    let mut rows: Vec<usize> = (0..n).collect();
    let count = count.min(n);
    for i in 0..count {
        rows.swap(i, i + rng.below((n - i) as u64) as usize);
    }
    rows.truncate(count);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unrelated rows meet at cosine ≈ 0.6, and every row outside a singleton group
    /// (20 of 21 rows on average) has a near-duplicate above 0.9.
    #[test]
    fn rows_are_unit_and_clustered_as_designed() {
        let data = generate(2000, 384, 7);
        assert!(data.rows().all(|r| (dot(r, r) - 1.0).abs() < 1e-4));
        let (mut sum, mut pairs, mut with_duplicate) = (0.0, 0, 0);
        for (i, a) in data.rows().enumerate() {
            let mut best = f32::MIN;
            for (j, b) in data.rows().enumerate().filter(|&(j, _)| j != i) {
                let cosine = dot(a, b);
                best = best.max(cosine);
                if j > i {
                    sum += cosine as f64;
                    pairs += 1;
                }
            }
            with_duplicate += usize::from(best > 0.9);
        }
        let mean = sum / pairs as f64;
        let share = with_duplicate as f64 / data.len() as f64;
        assert!((mean - 0.6).abs() < 0.02, "mean cosine {mean}");
        assert!(
            (share - 20.0 / 21.0).abs() < 0.03,
            "share with a duplicate {share}"
        );
    }
}
