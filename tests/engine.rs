//! The library's front door, used as a Rust user would: options checked before
//! the model loads, events reach the observer, and `Engine::analyse` gives the
//! report the binary writes.

mod common;

use std::sync::{Arc, Mutex};

use stancemap::report::JsonScope;
use stancemap::stance::{Context, Reach};
use stancemap::{
    AdapterSource, Agglomerative, Algorithm, Corpus, Engine, Error, Event, Observer, ReaderSource,
    SameClaimSource,
};

/// An observer that keeps every event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[test]
fn options_are_checked_before_the_model_is_touched() {
    // A model folder that does not exist: every bad option must be refused first.
    let builder = || Engine::builder().model_dir("no/such/model");
    let invalid = |result: Result<Engine, Error>| match result {
        Err(e @ (Error::Invalid { .. } | Error::Cluster(_))) => e.to_string(),
        Err(e) => panic!("expected an option error, got: {e}"),
        Ok(_) => panic!("expected an option error, got an engine"),
    };
    let nan = invalid(builder().duplicate_threshold(f32::NAN).build());
    assert!(nan.contains("duplicate threshold"), "{nan}");
    let big = invalid(builder().duplicate_threshold(2.0).build());
    assert!(big.contains("probability in (0, 1]"), "{big}");
    invalid(builder().duplicate_threshold(0.0).build());
    let missing = builder()
        .same_claim(SameClaimSource::File("no/such/model.json".into()))
        .build();
    match missing {
        Err(Error::SameClaim(e)) => assert!(e.to_string().contains("no/such/model.json"), "{e}"),
        Err(e) => panic!("expected a same-claim model error, got: {e}"),
        Ok(_) => panic!("a missing same-claim model loaded"),
    }
    invalid(builder().batch_size(0).build());
    invalid(builder().threads(0).build());
    let cut = invalid(
        builder()
            .grouping(Algorithm::Agglomerative(Agglomerative { cut: 3.0 }))
            .build(),
    );
    assert!(cut.contains("probability"), "{cut}");
    for weight in [-1.0, f32::NAN, f32::INFINITY] {
        let context = Context {
            reach: Reach::Neighbours(2),
            weight,
        };
        let bad = invalid(builder().stance_context(context).build());
        assert!(bad.contains("stance context's weight"), "{bad}");
    }
    // Options that pass get as far as the model, which is missing.
    match builder().check().map(|settings| settings.load()) {
        Ok(Err(Error::Model(e))) => assert!(e.to_string().contains("no/such/model"), "{e}"),
        Ok(Err(e)) => panic!("expected a model error, got: {e}"),
        Ok(Ok(_)) => panic!("a missing model folder loaded"),
        Err(e) => panic!("valid options refused: {e}"),
    }
}

#[test]
fn analyse_gives_the_report_the_binary_writes_and_tells_the_observer() {
    let recorder = Recorder::default();
    let engine = Engine::builder()
        .observer(recorder.clone())
        .build()
        .expect("engine");
    // Read as the binary below reads it (integration tests run in the crate root).
    let corpus = Corpus::read(&["seeds/".into()]).expect("seeds");
    let report = engine.analyse(&corpus).expect("analyse");
    assert_eq!(report.claims.len(), corpus.claims.len());

    let events = recorder.0.lock().unwrap();
    let total = events.iter().find_map(|e| match e {
        Event::Progress { done, total } if done == total => Some(*total),
        _ => None,
    });
    assert!(total.is_some_and(|t| t > 0), "no finished progress");
    assert!(events.iter().any(|e| matches!(e, Event::Embedded { .. })));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::LanguageOffset { pairs, .. } if *pairs >= 20)),
        "the seeds mix languages, so the offset is measured"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = common::stancemap(&[
        "cluster",
        "seeds/",
        "--no-cache",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let written = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let mut ours = Vec::new();
    report.write_json(&mut ours, JsonScope::Auto).unwrap();
    assert!(
        ours == written.as_bytes(),
        "Engine::analyse and `stancemap cluster` disagree"
    );
}

#[test]
fn stance_and_duplicates_work_from_the_library() {
    let engine = Engine::builder().build().expect("engine");
    let stances = engine
        .stance(&[
            "China's export controls show its firm grip on the rare-earth supply chain.",
            "中国的稀土出口管制彰显其对供应链的掌控。",
        ])
        .expect("stance");
    assert_eq!(stances.len(), 2);
    for s in &stances {
        let p = s.probabilities.to_array();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{p:?}");
    }
    let mut corpus = Corpus::default();
    corpus.add_text(
        "a",
        "Deal\nPakistan and the United States signed a $500 million rare-earth deal.",
    );
    corpus.add_text("b", "协议\n巴基斯坦与美国签署了价值5亿美元的稀土协议。");
    let pairs = engine.duplicates(&corpus).expect("duplicates");
    assert!(
        pairs
            .iter()
            .any(|p| p.article_a != p.article_b && p.probability >= 0.5),
        "the same deal in two languages is a duplicate: {pairs:?}"
    );
}

#[test]
fn without_the_cache_a_repeated_text_is_embedded_once() {
    let recorder = Recorder::default();
    let engine = Engine::builder()
        .cache(stancemap::CacheLocation::Off)
        .observer(recorder.clone())
        .build()
        .expect("engine");
    let tokens_embedded = |texts: &[&str]| {
        recorder.0.lock().unwrap().clear();
        let emb = engine.embed(texts, stancemap::Role::Passage).unwrap();
        let events = recorder.0.lock().unwrap();
        let total = events.iter().find_map(|e| match e {
            Event::Progress { total, .. } => Some(*total),
            _ => None,
        });
        (emb, total.expect("progress is told"))
    };
    let copy = "Pakistan shipped its first rare-earth sample to the United States.";
    let other = "China tightened its export controls.";
    let (emb, with_copy) = tokens_embedded(&[copy, other, copy]);
    let (_, distinct) = tokens_embedded(&[copy, other]);
    assert_eq!(
        with_copy, distinct,
        "the copy's tokens are not embedded again"
    );
    assert_eq!(emb.nrows(), 3);
    assert_eq!(emb.row(0), emb.row(2));
    assert_ne!(emb.row(0), emb.row(1));
}

/// An adapter for `encoder` that moves the last layer's down-projection.
fn write_adapter(dir: &std::path::Path, encoder: &str) -> std::path::PathBuf {
    use candle_core::{Device, Tensor};
    let cpu = &Device::Cpu;
    let a: Vec<f32> = (0..1536)
        .map(|i| ((i * 37) % 101) as f32 / 101.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..384)
        .map(|i| ((i * 53) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let update = stancemap::tune::LowRank {
        a: Tensor::from_vec(a, (1, 1536), cpu).unwrap(),
        b: Tensor::from_vec(b, (384, 1), cpu).unwrap(),
    };
    let adapter = stancemap::tune::Adapter {
        encoder: encoder.to_string(),
        scale: 0.05,
        updates: [("encoder.layer.11.output.dense".to_string(), update)].into(),
        trained_by: "tests/engine.rs".into(),
    };
    let path = dir.join(format!("{encoder}.safetensors"));
    std::fs::write(&path, adapter.to_bytes().unwrap()).unwrap();
    path
}

#[test]
fn an_adapter_is_merged_into_the_encoder_and_refused_for_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "China controls most rare-earth refining.",
        "中国控制着大部分稀土精炼。",
    ];
    let plain = Engine::builder()
        .adapter(AdapterSource::None)
        .build()
        .expect("engine");
    let ours = write_adapter(dir.path(), plain.model_id());
    let tuned = Engine::builder()
        .adapter(AdapterSource::File(ours.clone()))
        .build()
        .expect("tuned engine");
    let (before, after) = (
        plain.embed(&texts, stancemap::Role::Passage).unwrap(),
        tuned.embed(&texts, stancemap::Role::Passage).unwrap(),
    );
    for (b, a) in before.rows().into_iter().zip(after.rows()) {
        let (cos, norm) = (a.dot(&b), a.dot(&a).sqrt());
        assert!(
            cos < 0.9999 && cos > 0.5,
            "cosine to the untuned vector {cos}"
        );
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    // The same-claim model knows which adapter it was fitted with: the built-in
    // one (fitted with the built-in adapter) is refused for ours, naming both.
    let refused = tuned
        .same_claim_model()
        .expect_err("the published encoder's same-claim model was accepted")
        .to_string();
    assert!(
        refused.contains("e5-small-claims.json was fitted for another encoder")
            && refused.contains("this encoder runs"),
        "{refused}"
    );
    // The default engine runs the built-in adapter for claims, with its own
    // same-claim model.
    let for_claims = Engine::builder().build().expect("default engine");
    assert!(for_claims.adapter_digest().is_some() && plain.adapter_digest().is_none());
    assert!(for_claims.same_claim_model().is_ok() && plain.same_claim_model().is_ok());
    let moved = for_claims.embed(&texts, stancemap::Role::Passage).unwrap();
    let cos = moved.row(0).dot(&before.row(0));
    assert!(
        cos < 0.9999 && cos > 0.8,
        "the adapter for claims moved a claim to {cos}"
    );

    let other = write_adapter(dir.path(), "another-model");
    match Engine::builder()
        .adapter(AdapterSource::File(other))
        .build()
    {
        Err(e @ Error::Adapter(_)) => {
            let e = e.to_string();
            assert!(
                e.contains("another-model") && e.contains("--adapter none"),
                "{e}"
            );
        }
        Err(e) => panic!("expected an adapter error, got: {e}"),
        Ok(_) => panic!("an adapter for another model was accepted"),
    }
    // A damaged file is refused before the model is looked for.
    let damaged = dir.path().join("damaged.safetensors");
    std::fs::write(&damaged, &std::fs::read(&ours).unwrap()[..100]).unwrap();
    match Engine::builder()
        .model_dir("no/such/model")
        .adapter(AdapterSource::File(damaged))
        .build()
    {
        Err(e @ Error::Adapter(_)) => assert!(e.to_string().contains("damaged.safetensors"), "{e}"),
        Err(e) => panic!("expected an adapter error, got: {e}"),
        Ok(_) => panic!("a damaged adapter was accepted"),
    }
}

#[test]
fn the_dbscan_radius_follows_the_adapter_the_engine_merges() {
    use stancemap::{Dbscan, DEFAULT_MAX_DISTANCE, DEFAULT_MAX_DISTANCE_FOR_CLAIMS};
    let dbscan = |max_distance| {
        Algorithm::Dbscan(Dbscan {
            max_distance,
            min_points: 2,
        })
    };
    let radius = |engine: &Engine| match engine.options().grouping.algorithm() {
        Algorithm::Dbscan(d) => d.max_distance,
        other => panic!("expected DBSCAN, got {other}"),
    };
    let tuned = Engine::builder().grouping(dbscan(None)).build().unwrap();
    assert!(tuned.adapter_digest().is_some());
    assert_eq!(radius(&tuned), Some(DEFAULT_MAX_DISTANCE_FOR_CLAIMS));
    // The same model named by its folder takes the built-in adapter too, and
    // with it the adapter's radius.
    let folder = stancemap::model::models_root().join(stancemap::model::DEFAULT_MODEL);
    let local = Engine::builder()
        .model_dir(folder)
        .grouping(dbscan(None))
        .build()
        .unwrap();
    assert_eq!(local.adapter_digest(), tuned.adapter_digest());
    assert_eq!(radius(&local), Some(DEFAULT_MAX_DISTANCE_FOR_CLAIMS));
    let published = Engine::builder()
        .adapter(AdapterSource::None)
        .grouping(dbscan(None))
        .build()
        .unwrap();
    assert_eq!(published.default_max_distance(), DEFAULT_MAX_DISTANCE);
    assert_eq!(radius(&published), Some(DEFAULT_MAX_DISTANCE));
    // A radius given is kept whatever the adapter.
    let given = Engine::builder()
        .grouping(dbscan(Some(0.3)))
        .build()
        .unwrap();
    assert_eq!(radius(&given), Some(0.3));
}

#[test]
fn the_pair_reader_reads_who_did_what_and_is_refused_for_another_model() {
    let engine = Engine::builder()
        .pair_reader(ReaderSource::ForClaims)
        .build()
        .expect("engine with the built-in pair reader");
    assert!(engine.has_pair_reader());
    let claim = "China imposed new export controls on rare earths in October.";
    let pairs = [
        (
            claim,
            "In October, Beijing announced fresh restrictions on rare-earth exports.",
        ),
        (claim, "中国在十月对稀土实施了新的出口管制。"),
        (
            claim,
            "Pakistan sent its first shipment of rare earths to the United States.",
        ),
    ];
    let p = engine.read_pairs(&pairs).unwrap().expect("a reader");
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{p:?}");
    assert!(
        p[0] > 0.5 && p[1] > 0.5,
        "a paraphrase and a translation: {p:?}"
    );
    assert!(p[2] < 0.5, "another point of the same story: {p:?}");
    let plain = Engine::builder().build().expect("engine");
    assert!(!plain.has_pair_reader() && plain.read_pairs(&pairs).unwrap().is_none());

    // A reader fitted for another encoder is refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let built_in = stancemap::same_claim::reader::FOR_CLAIMS;
    let (_, header) = safetensors::SafeTensors::read_metadata(built_in).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    meta.insert("encoder".into(), "another-model".into());
    let tensors = safetensors::SafeTensors::deserialize(built_in).unwrap();
    let other = dir.path().join("other.safetensors");
    safetensors::serialize_to_file(tensors.tensors(), Some(meta), &other).unwrap();
    match Engine::builder()
        .pair_reader(ReaderSource::File(other))
        .build()
    {
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains("other.safetensors") && e.contains("another-model"),
                "{e}"
            );
            assert!(e.contains("--pair-reader none"), "{e}");
        }
        Ok(_) => panic!("a reader for another model was accepted"),
    }
}
