//! The real model against golden data made with the HF `tokenizers` library and a
//! float64 PyTorch-style reference forward pass (`tests/data/`, from shared/golden).

use std::sync::OnceLock;

use stancemap::{model, Engine, Precision, Role, Silent};

#[derive(serde::Deserialize)]
struct GoldenTokens {
    text: String,
    ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct GoldenEmbedding {
    prefix: String,
    text: String,
    n_tokens: usize,
    embedding: Vec<f64>,
}

fn read_jsonl<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).expect("golden line"))
        .collect()
}

/// The default model's folder, fetched once for this test binary.
fn model_dir() -> std::path::PathBuf {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| model::resolve(None, &Silent).expect("default model").dir)
        .clone()
}

fn embedder(precision: Precision) -> Engine {
    Engine::builder()
        .adapter(stancemap::AdapterSource::None)
        .model_dir(model_dir())
        .precision(precision)
        .build()
        .expect("load model")
}

fn split_role(text: &str) -> (Role, &str) {
    if let Some(rest) = text.strip_prefix("query: ") {
        (Role::Query, rest)
    } else {
        (
            Role::Passage,
            text.strip_prefix("passage: ").expect("golden prefix"),
        )
    }
}

#[test]
fn token_ids_match_hf_tokenizers_exactly() {
    let embedder = embedder(Precision::Q4);
    let golden: Vec<GoldenTokens> = read_jsonl("tokens.jsonl");
    assert_eq!(golden.len(), 25);
    for g in &golden {
        let (role, text) = split_role(&g.text);
        let ids = embedder.token_ids(&[text], role).unwrap().remove(0);
        assert_eq!(ids, g.ids, "token ids differ for {:?}", g.text);
    }
}

fn check_precision(precision: Precision, min_cos: f64) {
    let embedder = embedder(precision);
    let golden: Vec<GoldenEmbedding> = read_jsonl("embeddings.jsonl");
    assert!(
        golden.iter().any(|g| g.n_tokens > 512),
        "a windowed text is in the set"
    );
    let mut worst = (f64::INFINITY, String::new());
    for role in [Role::Passage, Role::Query] {
        let rows: Vec<&GoldenEmbedding> = golden
            .iter()
            .filter(|g| (g.prefix == "query: ") == (role == Role::Query))
            .collect();
        let texts: Vec<&str> = rows.iter().map(|g| g.text.as_str()).collect();
        let got = embedder.embed(&texts, role).unwrap();
        assert_eq!(got.dim(), (rows.len(), 384));
        for (g, row) in rows.iter().zip(got.rows()) {
            let norm: f64 = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "row norm {norm}");
            let cos: f64 = row
                .iter()
                .zip(&g.embedding)
                .map(|(&a, &b)| a as f64 * b)
                .sum();
            if cos < worst.0 {
                worst = (cos, g.text.chars().take(40).collect());
            }
        }
    }
    eprintln!(
        "{precision}: worst cosine to golden {:.6} ({:?})",
        worst.0, worst.1
    );
    assert!(
        worst.0 >= min_cos,
        "{precision}: cosine {} < {min_cos} for {:?}",
        worst.0,
        worst.1
    );
}

#[test]
fn f32_matches_golden_embeddings() {
    check_precision(Precision::F32, 0.999);
}

/// Short texts embedded one at a time take the few-rows paths (`src/embed/skinny.rs`,
/// and the packed kernels' split by panel) instead of the batch's; they must match
/// as well.
fn check_short_texts_alone(precision: Precision, min_cos: f64) {
    let embedder = embedder(precision);
    let golden: Vec<GoldenEmbedding> = read_jsonl("embeddings.jsonl");
    let short: Vec<&GoldenEmbedding> = golden.iter().filter(|g| g.n_tokens <= 12).collect();
    assert!(short.len() >= 3, "{} short texts", short.len());
    for g in short {
        let role = if g.prefix == "query: " {
            Role::Query
        } else {
            Role::Passage
        };
        let got = embedder.embed(&[g.text.as_str()], role).unwrap();
        let cos: f64 = got
            .row(0)
            .iter()
            .zip(&g.embedding)
            .map(|(&a, &b)| a as f64 * b)
            .sum();
        assert!(cos >= min_cos, "{precision}: cosine {cos} for {:?}", g.text);
    }
}

#[test]
fn short_texts_alone_match_golden_embeddings() {
    check_short_texts_alone(Precision::F32, 0.999);
}

#[test]
fn q8_matches_golden_embeddings() {
    check_precision(Precision::Q8, 0.99);
    check_short_texts_alone(Precision::Q8, 0.99);
}

#[test]
fn bf16_matches_golden_embeddings() {
    check_precision(Precision::Bf16, 0.99);
}

#[test]
fn q4_matches_golden_embeddings() {
    check_precision(Precision::Q4, 0.99);
}

#[test]
fn long_text_is_windowed_not_truncated() {
    let embedder = embedder(Precision::F32);
    let golden: Vec<GoldenEmbedding> = read_jsonl("embeddings.jsonl");
    let long = golden.iter().find(|g| g.n_tokens > 512).unwrap();
    let ids = embedder
        .token_ids(&[long.text.as_str()], Role::Passage)
        .unwrap();
    assert_eq!(ids[0].len(), long.n_tokens);
    // The whole text and its first window alone must differ: the tail counts.
    let whole = embedder
        .embed(&[long.text.as_str()], Role::Passage)
        .unwrap();
    let head: String = long.text.chars().take(300).collect();
    let first = embedder.embed(&[head.as_str()], Role::Passage).unwrap();
    let cos = whole.row(0).dot(&first.row(0));
    assert!(
        cos < 0.999,
        "long text embedded like its head alone (cos {cos})"
    );
}

/// The CPU kernels this machine does not pick: with `STANCEMAP_PORTABLE` set, bf16
/// and q8 run what CPUs without AVX-512 BF16 or VNNI run (candle's matmul, the f32
/// few-rows path), here checked on any CPU, through the `embed` command.
#[test]
fn portable_kernels_match_golden_embeddings() {
    check_kernel_path(("STANCEMAP_PORTABLE", "1"));
}

/// With `STANCEMAP_KERNELS=scalar`, every kernel of ours runs its plain-Rust form
/// (GELU, softmax, the few-rows products), on any CPU.
#[test]
fn scalar_kernels_match_golden_embeddings() {
    check_kernel_path(("STANCEMAP_KERNELS", "scalar"));
}

/// f32, bf16 and q8 through `stancemap embed` with `env` set, against the golden
/// passages.
fn check_kernel_path(env: (&str, &str)) {
    let golden: Vec<GoldenEmbedding> = read_jsonl("embeddings.jsonl");
    let passages: Vec<&GoldenEmbedding> =
        golden.iter().filter(|g| g.prefix == "passage: ").collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("passages.jsonl");
    let lines: Vec<String> = passages
        .iter()
        .enumerate()
        .map(|(i, g)| serde_json::json!({"id": i, "text": g.text}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();
    for (precision, min_cos) in [("f32", 0.999), ("bf16", 0.99), ("q8", 0.99)] {
        let output = dir.path().join(format!("{precision}.jsonl"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_stancemap"))
            .args(["embed", "--precision", precision, "-o"])
            .args([&output, &input])
            .env(env.0, env.1)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&output)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), passages.len());
        for (row, g) in rows.iter().zip(&passages) {
            let cos: f64 = row["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&g.embedding)
                .map(|(a, &b)| a.as_f64().unwrap() * b)
                .sum();
            assert!(
                cos >= min_cos,
                "{env:?} {precision}: cosine {cos} for {:?}",
                g.text
            );
        }
    }
}
