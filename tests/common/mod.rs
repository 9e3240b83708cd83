//! Helpers shared by the end-to-end tests: run the real binary from the crate root.

use std::process::{Command, Output};

/// Runs `stancemap` with `args` in the crate root.
pub fn stancemap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stancemap"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run stancemap")
}

/// The command's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
