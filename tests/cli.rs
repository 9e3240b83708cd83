//! The `stancemap` binary end to end: real files in, real model, errors out.

use std::path::Path;
mod common;

use common::{stancemap, stderr};
use std::process::Output;

/// Fails unless the command exited 1 with a one-line error (no panic) containing `needle`.
fn assert_clean_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn embeds_seeds_to_npy_with_unit_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("seeds.npy");
    let seeds: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let expected_rows: usize = seeds
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    let mut args = vec!["embed"];
    args.extend(seeds.iter().map(String::as_str));
    args.extend(["-o", out_path.to_str().unwrap()]);
    let out = stancemap(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let array: ndarray::Array2<f32> = ndarray_npy::read_npy(&out_path).unwrap();
    assert_eq!(array.dim(), (expected_rows, 384));
    for row in array.rows() {
        assert!((row.dot(&row).sqrt() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn jsonl_in_and_out_keep_ids() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": \"a\", \"text\": \"稀土\"}\n{\"id\": \"b\", \"text\": \"rare earths\"}\n",
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    let out = stancemap(&[
        "embed",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--query",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["id"], "b");
    assert_eq!(lines[1]["embedding"].as_array().unwrap().len(), 384);
}

#[test]
fn bad_inputs_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases = [
        (
            write("empty.txt", b""),
            "empty.txt: no passages".to_string(),
        ),
        (
            write("binary.txt", b"\x7fELF\0\0\x01"),
            "binary.txt: looks binary".to_string(),
        ),
        (
            write("notext.jsonl", b"{\"id\": 1}\n"),
            "notext.jsonl:1: no \"text\" field".to_string(),
        ),
        (
            write("broken.jsonl", b"{\"text\": \"a\"}\n{oops\n"),
            "broken.jsonl:2: invalid JSON".to_string(),
        ),
    ];
    for (path, needle) in &cases {
        let out = stancemap(&["embed", path, "-o", "/dev/null.npy"]);
        assert_clean_error(&out, needle);
    }
    let out = stancemap(&["embed", "no/such/file.txt", "-o", "x.npy"]);
    assert_clean_error(&out, "no/such/file.txt");
}

#[test]
fn bad_model_folders_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "text\n").unwrap();
    let input = input.to_str().unwrap();
    let out = stancemap(&[
        "embed",
        input,
        "-o",
        "x.npy",
        "--model",
        dir.path().to_str().unwrap(),
    ]);
    assert_clean_error(&out, "has no config.json");

    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::write(model.join(f), b"{}").unwrap();
    }
    let out = stancemap(&[
        "embed",
        input,
        "-o",
        "x.npy",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "config.json: not a usable BERT/XLM-R config");

    let out = stancemap(&["embed", input, "-o", "x.npy", "--model", "no/such/dir"]);
    assert_clean_error(&out, "does not exist");
}

#[test]
fn truncated_weights_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/multilingual-e5-small");
    if !real.join("model.safetensors").is_file() {
        // Fetch through the binary itself, as a user would.
        let out = stancemap(&["model", "fetch"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let model = dir.path().join("cut");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(real.join(f), model.join(f)).unwrap();
    }
    let weights = std::fs::read(real.join("model.safetensors")).unwrap();
    std::fs::write(
        model.join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "text\n").unwrap();
    let out = stancemap(&[
        "embed",
        input.to_str().unwrap(),
        "-o",
        "x.npy",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "model fetch --force");
}

#[test]
fn unsupported_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "text\n").unwrap();
    let out = stancemap(&["embed", input.to_str().unwrap(), "-o", "out.csv"]);
    assert_clean_error(&out, "unsupported output type");
}

#[test]
fn an_unknown_kernel_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "text\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stancemap"))
        .args(["embed", input.to_str().unwrap(), "-o", "-"])
        .env("STANCEMAP_KERNELS", "avx9000")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_clean_error(&out, "STANCEMAP_KERNELS=\"avx9000\"");
}

#[test]
fn a_pair_reader_that_is_not_one_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.safetensors");
    let out = stancemap(&[
        "dedup",
        "seeds/",
        "--pair-reader",
        missing.to_str().unwrap(),
    ]);
    assert_clean_error(&out, "pair reader");
    assert_clean_error(&out, "missing.safetensors");
    // The built-in adapter is an adapter file but not a reader: it has no head.
    let adapter = "models/adapter/e5-small-claims.safetensors";
    let out = stancemap(&["dedup", "seeds/", "--pair-reader", adapter]);
    assert_clean_error(&out, "not a stancemap-pair-reader-1 file");
}

#[test]
fn a_set_weight_for_no_set_or_out_of_range_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("pairs.tsv");
    std::fs::write(&set, "text1\ttext2\tlabel\na\tb\t1\n").unwrap();
    let model = dir.path().join("m.json");
    let fit = |weight: &str| {
        stancemap(&[
            "eval",
            "fit-same-claim",
            set.to_str().unwrap(),
            "-o",
            model.to_str().unwrap(),
            "--set-weight",
            weight,
        ])
    };
    assert_clean_error(&fit("other=0.5"), "--set-weight other: no set of that name");
    let out = fit("pairs=0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a weight in (0, 10]"),
        "{}",
        stderr(&out)
    );
    assert!(!model.exists());
}
