//! What CPU this is, for benchmark reports.

use serde::Serialize;

/// The processor the figures were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct CpuInfo {
    pub model: String,
    pub logical_cores: usize,
    /// SIMD features detected at run time.
    pub features: Vec<&'static str>,
    /// The kernel path in force (`STANCEMAP_KERNELS` caps it).
    pub kernels: String,
}

impl CpuInfo {
    /// Reads the model name from `/proc/cpuinfo` and detects SIMD features.
    pub fn detect() -> Self {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Self {
            model,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            features: simd_features(),
            kernels: crate::embed::isa::features().describe(),
        }
    }
}

impl std::fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} logical cores; {}); kernels: {}",
            self.model,
            self.logical_cores,
            self.features.join(" "),
            self.kernels
        )
    }
}

#[cfg(target_arch = "x86_64")]
fn simd_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! probe {
        ($($f:tt),*) => {$( if std::is_x86_feature_detected!($f) { found.push($f); } )*};
    }
    probe!(
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512vnni",
        "avx512bf16",
        "avxvnni"
    );
    found
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_features() -> Vec<&'static str> {
    Vec::new()
}
