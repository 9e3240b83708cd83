//! The `stancemap` binary: everything lives in [`cli`] and the library.

mod cli;

/// mimalloc keeps freed memory for the next allocation of the same size: the
/// encoder's per-layer buffers (megabytes each) would otherwise come fresh from the
/// kernel every time, and page faults with page clearing cost 7% of a bench run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    cli::main();
}
