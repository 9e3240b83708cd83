//! The one seeded generator (xorshift64) behind synthetic benchmark corpora, test
//! data and adapter training's start and order: the same seed gives the same
//! stream on every machine, with no dependency.

use ndarray::Array1;

/// A xorshift64 generator.
pub(crate) struct Xorshift(u64);

impl Xorshift {
    /// Started at `state` as given (non-zero).
    pub fn from_state(state: u64) -> Self {
        Xorshift(state)
    }

    /// Started at a mix of `seed` (any value, zero included).
    pub fn seeded(seed: u64) -> Self {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 11) as f32 / (1u64 << 53) as f32
    }

    /// Uniform in (0, 1): never 0, so its logarithm is finite.
    pub fn open_uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    /// Uniform in `0..k`.
    pub fn below(&mut self, k: usize) -> usize {
        (self.next_u64() % k as u64) as usize
    }

    /// A random direction in `dim` dimensions (Gaussian components, Box–Muller).
    pub fn unit(&mut self, dim: usize) -> Array1<f32> {
        let mut v = Array1::from_shape_fn(dim, |_| {
            let (u, w) = (self.open_uniform(), self.open_uniform());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * w).cos()
        });
        v /= v.dot(&v).sqrt();
        v
    }
}

/// Uniform numbers in [0, 1) from a generator started at `state` (non-zero).
pub(crate) fn uniform_from(state: u64) -> impl FnMut() -> f32 {
    let mut random = Xorshift::from_state(state);
    move || random.uniform()
}
