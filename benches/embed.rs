//! Criterion benchmark of the embedding engine on a slice of the workload, per
//! precision. The CPU is printed first: compare figures from one machine only.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use stancemap::cpu::CpuInfo;
use stancemap::input::read_passages;
use stancemap::{model, Engine, Precision, Role, Silent};

/// The default model at `precision`.
fn engine(dir: &std::path::Path, precision: Precision) -> Engine {
    Engine::builder()
        .model_dir(dir)
        .precision(precision)
        .build()
        .expect("load")
}

fn embedding(c: &mut Criterion) {
    eprintln!("CPU: {}", CpuInfo::detect());
    let dir = model::resolve(None, &Silent).expect("default model").dir;
    let workload = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workload.jsonl");
    let passages = read_passages(&workload, &mut Vec::new()).expect("workload");
    let texts: Vec<&str> = passages.iter().take(64).map(|p| p.text.as_str()).collect();
    let mut group = c.benchmark_group("embed_64_passages");
    group.sample_size(10);
    for precision in [
        Precision::F32,
        Precision::Bf16,
        Precision::Q4,
        Precision::Q8,
    ] {
        let embedder = engine(&dir, precision);
        let tokens: usize = embedder
            .token_ids(&texts, Role::Passage)
            .expect("tokenize")
            .iter()
            .map(Vec::len)
            .sum();
        group.throughput(Throughput::Elements(tokens as u64));
        group.bench_function(precision.to_string(), |b| {
            b.iter(|| embedder.embed(&texts, Role::Passage).expect("embed"))
        });
    }
    group.finish();
    for precision in [Precision::F32, Precision::Q8] {
        let embedder = engine(&dir, precision);
        c.bench_function(&format!("query_latency_{precision}"), |b| {
            b.iter(|| {
                embedder
                    .embed(&[stancemap::bench::QUERY], Role::Query)
                    .expect("embed")
            })
        });
    }
}

criterion_group!(benches, embedding);
criterion_main!(benches);
