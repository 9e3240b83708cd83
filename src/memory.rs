//! Whether a corpus fits in memory, checked before any embedding: a run that
//! would be killed for memory hours in is refused at once, with the numbers.
//!
//! The estimate is what was measured: `stancemap bench scale` at 1,000,000 claims
//! peaked at 3,248 MiB through neighbours and grouping (3,250 MiB again with the
//! large components' scored near pairs streamed, 2026-12-03; about 3.4 KB a claim, one
//! copy of the vectors included); `cluster` also keeps a copy of the vectors for
//! stance (the embedding cache is memory-mapped, not copied into memory), and the
//! texts and report rows; the model, its tokenizer and the runtime take about
//! 860 MiB at f32 (`farm-bench` on `stancemap embed` of one text, 2026-12-04,
//! since the weights are read without a memory map; 1.3 GiB before), 524 MB at q8.

use crate::error::{Error, Result};

/// Bytes a claim takes through neighbours and grouping (measured, above).
const NEIGHBOURS_AND_GROUPING_BYTES: u64 = 3_406;
/// Bytes a claim's text, spans and report row take, roughly.
const TEXT_AND_REPORT_BYTES: u64 = 1_024;
/// The model, its tokenizer and the runtime (at f32, the largest).
const FIXED_BYTES: u64 = 1 << 30;

/// The estimated peak memory of analysing `claims` claims with vectors of width
/// `dim`, in bytes.
pub fn estimated_bytes(claims: usize, dim: usize) -> u64 {
    let vectors = dim as u64 * 4;
    FIXED_BYTES + claims as u64 * (NEIGHBOURS_AND_GROUPING_BYTES + vectors + TEXT_AND_REPORT_BYTES)
}

/// Memory the system can give without swapping (`MemAvailable`, Linux); `None`
/// where it cannot be read.
pub fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses `claims` claims of width `dim` when their estimate exceeds
/// `available` bytes (unknown: nothing is refused).
pub fn check_fits(claims: usize, dim: usize, available: Option<u64>) -> Result<()> {
    let needed = estimated_bytes(claims, dim);
    match available {
        Some(available) if needed > available => Err(Error::TooLarge {
            claims,
            needed_mib: needed >> 20,
            available_mib: available >> 20,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_claims_fit_in_24_gib_and_ten_million_do_not() {
        let machine = Some(24u64 << 30);
        assert!(check_fits(1_000_000, 384, machine).is_ok());
        let refused = check_fits(10_000_000, 384, machine)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("10000000 claims need about 57920 MiB")
                && refused.contains("24576 MiB are available"),
            "{refused}"
        );
        assert!(check_fits(10_000_000, 384, None).is_ok());
    }
}
