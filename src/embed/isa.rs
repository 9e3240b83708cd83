//! Which instruction sets the kernels may use, decided once per process: what the
//! CPU has, capped by `STANCEMAP_KERNELS` (`avx512`, `avx2` or `scalar`) so that
//! every path can be run and tested on one machine. `STANCEMAP_PORTABLE=1` is
//! `avx2`: what CPUs without AVX-512 run.

use std::sync::OnceLock;

/// The widest instruction set the kernels may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust: the reference every kernel is tested against.
    Scalar,
    /// AVX2 + FMA: GELU, softmax and the few-rows products.
    Avx2,
    /// AVX-512: also the packed bf16 (AVX-512 BF16) and int8 (VNNI) products.
    Avx512,
}

/// The kernels' view of the CPU.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    level: Level,
    bf16: bool,
    vnni: bool,
}

impl Features {
    /// AVX2 and FMA may be used.
    pub fn avx2(&self) -> bool {
        self.level >= Level::Avx2
    }

    /// AVX-512 F may be used.
    pub fn avx512(&self) -> bool {
        self.level >= Level::Avx512
    }

    /// AVX-512 BF16's `vdpbf16ps` may be used.
    pub fn avx512_bf16(&self) -> bool {
        self.avx512() && self.bf16
    }

    /// AVX-512 BW and VNNI's `vpdpbusd` may be used.
    pub fn avx512_vnni(&self) -> bool {
        self.avx512() && self.vnni
    }

    /// The path in words, for benchmark reports.
    pub fn describe(&self) -> String {
        let packed = match (self.avx512_bf16(), self.avx512_vnni()) {
            (true, true) => " (packed bf16 and int8)",
            (true, false) => " (packed bf16)",
            (false, true) => " (packed int8)",
            (false, false) => "",
        };
        let level = match self.level {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        };
        format!("{level}{packed}")
    }
}

/// The features in force for this process.
pub fn features() -> &'static Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    FEATURES.get_or_init(|| {
        let detected = detect();
        // A bad value is refused by `check_env` before any engine is built.
        let cap = requested().ok().flatten().unwrap_or(Level::Avx512);
        Features {
            level: detected.level.min(cap),
            ..detected
        }
    })
}

/// Refuses a `STANCEMAP_KERNELS` value that names no path.
pub fn check_env() -> Result<(), String> {
    requested().map(|_| ())
}

/// The cap the environment asks for, if any.
fn requested() -> Result<Option<Level>, String> {
    if let Ok(value) = std::env::var("STANCEMAP_KERNELS") {
        return match value.as_str() {
            "avx512" => Ok(Some(Level::Avx512)),
            "avx2" | "portable" => Ok(Some(Level::Avx2)),
            "scalar" => Ok(Some(Level::Scalar)),
            _ => Err(format!(
                "STANCEMAP_KERNELS={value:?}: use avx512, avx2 (= portable) or scalar"
            )),
        };
    }
    let portable = std::env::var("STANCEMAP_PORTABLE").is_ok_and(|v| !v.is_empty() && v != "0");
    Ok(portable.then_some(Level::Avx2))
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    use std::is_x86_feature_detected as has;
    let level = if has!("avx512f") && has!("avx2") && has!("fma") {
        Level::Avx512
    } else if has!("avx2") && has!("fma") {
        Level::Avx2
    } else {
        Level::Scalar
    };
    Features {
        level,
        bf16: has!("avx512bf16"),
        vnni: has!("avx512bw") && has!("avx512vnni"),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Features {
    Features {
        level: Level::Scalar,
        bf16: false,
        vnni: false,
    }
}
