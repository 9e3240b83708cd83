//! Tuning the encoder for claims: low-rank adapters on the top layers' dense
//! weights, trained on labelled pairs through candle's autograd and merged into
//! the weights when the model loads.

mod adapter;
mod top;
mod train;

pub(crate) use adapter::read_safetensors;
pub use adapter::{Adapter, AdapterError, LowRank, FORMAT, FOR_CLAIMS, FOR_CLAIMS_PATH};
pub use train::{train, TrainEvent, TrainOptions};

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Tensor};
    use candle_nn::{Optimizer, VarBuilder};

    use super::top::TrainableTop;
    use super::train::ranking_loss;
    use super::*;
    use crate::model::EncoderConfig;

    const HIDDEN: usize = 8;
    const FF: usize = 16;

    fn config() -> EncoderConfig {
        serde_json::from_str(&format!(
            r#"{{"vocab_size": 10, "hidden_size": {HIDDEN}, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": {FF},
                "max_position_embeddings": 16}}"#
        ))
        .unwrap()
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut uniform = crate::random::uniform_from(seed);
        (0..len).map(|_| uniform() - 0.5).collect()
    }

    /// One layer's weights, deterministic.
    fn weights() -> VarBuilder<'static> {
        let cpu = &Device::Cpu;
        let mut tensors = HashMap::new();
        let dense = [
            ("attention.self.query", HIDDEN, HIDDEN),
            ("attention.self.key", HIDDEN, HIDDEN),
            ("attention.self.value", HIDDEN, HIDDEN),
            ("attention.output.dense", HIDDEN, HIDDEN),
            ("intermediate.dense", FF, HIDDEN),
            ("output.dense", HIDDEN, FF),
        ];
        for (i, (name, out, inputs)) in dense.into_iter().enumerate() {
            let w = Tensor::from_vec(values(out * inputs, 3 + i as u64), (out, inputs), cpu);
            let b = Tensor::from_vec(values(out, 50 + i as u64), out, cpu);
            tensors.insert(format!("encoder.layer.0.{name}.weight"), w.unwrap());
            tensors.insert(format!("encoder.layer.0.{name}.bias"), b.unwrap());
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            let ones = Tensor::ones(HIDDEN, DType::F32, cpu).unwrap();
            let zeros = Tensor::zeros(HIDDEN, DType::F32, cpu).unwrap();
            tensors.insert(format!("encoder.layer.0.{norm}.weight"), ones);
            tensors.insert(format!("encoder.layer.0.{norm}.bias"), zeros);
        }
        VarBuilder::from_tensors(tensors, DType::F32, cpu)
    }

    /// Four sequences of 3, 5, 2 and 4 tokens.
    fn states() -> (Tensor, Vec<(usize, usize)>) {
        let spans = vec![(0, 3), (3, 5), (8, 2), (10, 4)];
        let x = Tensor::from_vec(values(14 * HIDDEN, 99), (14, HIDDEN), &Device::Cpu).unwrap();
        (x, spans)
    }

    /// Cosines of sequence pairs (0, 1) [same] and (2, 3) [not], and the loss.
    fn pair_loss(top: &TrainableTop) -> candle_core::Result<Tensor> {
        let (x, spans) = states();
        let e = top.embed(&x, &spans)?;
        let cos = |a: usize, b: usize| (e.get(a)? * e.get(b)?)?.sum_all();
        let cosines = Tensor::stack(&[cos(0, 1)?, cos(2, 3)?], 0)?;
        ranking_loss(&cosines, &[(0, 1, true), (2, 3, false)], 20.0)
    }

    #[test]
    fn training_lowers_the_loss_and_the_merged_weights_embed_as_training_did() {
        let (vb, cfg) = (weights(), config());
        let top = TrainableTop::load(&vb, &cfg, 0, 2, 1.0).unwrap();
        let mut optimizer = candle_nn::AdamW::new_lr(top.vars(), 0.05).unwrap();
        let before = pair_loss(&top).unwrap().to_scalar::<f32>().unwrap();
        for _ in 0..30 {
            optimizer.backward_step(&pair_loss(&top).unwrap()).unwrap();
        }
        let after = pair_loss(&top).unwrap().to_scalar::<f32>().unwrap();
        assert!(after < before * 0.5, "loss {before} → {after}");

        let adapter = top.adapter("tiny", "test");
        let merged = adapter.merged(weights()).unwrap();
        let untrained_on_merged = TrainableTop::load(&merged, &cfg, 0, 2, 1.0).unwrap();
        let (x, spans) = states();
        let trained = top.embed(&x, &spans).unwrap().to_vec2::<f32>().unwrap();
        let merged = untrained_on_merged
            .embed(&x, &spans)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (a, b) in trained.iter().flatten().zip(merged.iter().flatten()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn an_adapter_file_reads_back_and_is_refused_for_another_model() {
        let top = TrainableTop::load(&weights(), &config(), 0, 2, 1.5).unwrap();
        let adapter = top.adapter("tiny", "the command");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.safetensors");
        std::fs::write(&path, adapter.to_bytes().unwrap()).unwrap();
        let read = Adapter::load(&path).unwrap();
        assert_eq!((read.encoder.as_str(), read.scale), ("tiny", 1.5));
        assert_eq!(read.trained_by, "the command");
        assert_eq!(read.updates.len(), 6);
        assert!(read.check_model("tiny", &path).is_ok());
        let other = read
            .check_model("multilingual-e5-small", &path)
            .unwrap_err();
        assert!(
            other
                .to_string()
                .contains("trained for the encoder \"tiny\""),
            "{other}"
        );
    }

    #[test]
    fn a_damaged_or_mismatched_adapter_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, b"not tensors").unwrap();
        let err = Adapter::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.safetensors") && err.contains("not a safetensors"),
            "{err}"
        );
        let missing = Adapter::load(&dir.path().join("none.safetensors")).unwrap_err();
        assert!(
            missing.to_string().contains("none.safetensors"),
            "{missing}"
        );

        let top = TrainableTop::load(&weights(), &config(), 0, 2, 1.0).unwrap();
        let mut adapter = top.adapter("tiny", "");
        let update = adapter
            .updates
            .remove("encoder.layer.0.output.dense")
            .unwrap();
        // The down-projection's update put on the query weight: the shapes differ.
        adapter.updates.insert(
            "encoder.layer.0.attention.self.query".into(),
            update.clone(),
        );
        let merged = adapter.merged(weights()).unwrap();
        let err = merged
            .get(
                (HIDDEN, HIDDEN),
                "encoder.layer.0.attention.self.query.weight",
            )
            .unwrap_err();
        assert!(err.to_string().contains("attention.self.query"), "{err}");
        adapter
            .updates
            .insert("encoder.layer.7.output.dense".into(), update);
        let err = adapter.merged(weights()).err().unwrap().to_string();
        assert!(err.contains("encoder.layer.7.output.dense"), "{err}");
    }
}
