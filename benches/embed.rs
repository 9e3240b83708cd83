//! Criterion benchmark of the embedding engine on a slice of the workload, per
//! precision. The CPU is printed first: compare figures from one machine only.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use stancemap::cpu::CpuInfo;
use stancemap::embed::{EmbedOptions, Embedder, Precision, Role};
use stancemap::input::read_passages;
use stancemap::model;

fn embedding(c: &mut Criterion) {
    eprintln!("CPU: {}", CpuInfo::detect());
    let files = model::resolve(None).expect("default model");
    let workload = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workload.jsonl");
    let passages = read_passages(&workload).expect("workload");
    let texts: Vec<&str> = passages.iter().take(64).map(|p| p.text.as_str()).collect();
    let mut group = c.benchmark_group("embed_64_passages");
    group.sample_size(10);
    for precision in [
        Precision::F32,
        Precision::Bf16,
        Precision::Q4,
        Precision::Q8,
    ] {
        let options = EmbedOptions {
            precision,
            ..EmbedOptions::default()
        };
        let embedder = Embedder::load(files.clone(), options).expect("load");
        let tokens: usize = embedder
            .token_ids(&texts, Role::Passage)
            .expect("tokenize")
            .iter()
            .map(Vec::len)
            .sum();
        group.throughput(Throughput::Elements(tokens as u64));
        group.bench_function(precision.to_string(), |b| {
            b.iter(|| {
                embedder
                    .embed(&texts, Role::Passage, &mut |_, _| {})
                    .expect("embed")
            })
        });
    }
    group.finish();
    for precision in [Precision::F32, Precision::Q8] {
        let options = EmbedOptions {
            precision,
            ..EmbedOptions::default()
        };
        let embedder = Embedder::load(files.clone(), options).expect("load");
        c.bench_function(&format!("query_latency_{precision}"), |b| {
            b.iter(|| {
                embedder
                    .embed(&[stancemap::bench::QUERY], Role::Query, &mut |_, _| {})
                    .expect("embed")
            })
        });
    }
}

criterion_group!(benches, embedding);
criterion_main!(benches);
