//! Training an adapter: the frozen lower layers run once over every text, then the
//! top layers' low-rank updates are trained on labelled pairs with a ranking loss
//! (CoSENT within a batch drawn from one set: its same-claim pairs should score
//! above its other pairs; plus in-batch negatives: a restatement should be nearer
//! its own claim than the batch's other restatements), held near the untuned
//! embeddings by an anchor term.

use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder};

use super::top::TrainableTop;
use super::Adapter;
use crate::embed::{Embedder, Role, TokenBatch};
use crate::eval::{average_precision, distinct_texts, TrainingPair};

/// How to train an adapter.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Layers from this one to the last are adapted.
    pub first_layer: usize,
    pub rank: usize,
    /// The factor on every update.
    pub scale: f64,
    pub epochs: usize,
    /// Labelled pairs per step.
    pub batch_pairs: usize,
    pub learning_rate: f64,
    /// Weight of the anchor term, `mean(1 − cos(tuned, untuned))`.
    pub anchor: f64,
    /// How sharply the ranking loss weighs a pair ordered wrongly.
    pub sharpness: f64,
    /// Longest sequence trained on (longer texts are cut).
    pub max_tokens: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            first_layer: 8,
            rank: 8,
            scale: 2.0,
            epochs: 2,
            batch_pairs: 32,
            learning_rate: 5e-4,
            anchor: 4.0,
            sharpness: 20.0,
            max_tokens: 128,
        }
    }
}

/// What training reports as it goes.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// Texts run through the frozen layers so far.
    Encoding { done: usize, total: usize },
    /// A step's loss (ranking, anchor).
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        ranking: f32,
        anchor: f32,
    },
    /// After each epoch (and before the first, epoch 0): per set, the average
    /// precision of cosine on the pairs kept apart.
    Measured {
        epoch: usize,
        average_precision: Vec<(String, f64)>,
    },
}

/// The distinct texts of the pairs, each text's index, and per pair the two indices.
struct Texts {
    texts: Vec<String>,
    sides: Vec<(usize, usize)>,
}

impl Texts {
    fn of(pairs: &[TrainingPair]) -> Self {
        let (texts, sides) = distinct_texts(
            pairs
                .iter()
                .map(|p| (p.texts.0.as_str(), p.texts.1.as_str())),
        );
        Self {
            texts: texts.into_iter().map(str::to_string).collect(),
            sides,
        }
    }
}

/// Trains an adapter for `embedder`'s encoder (run at f32, untuned) on `pairs`;
/// pairs kept apart are only measured.
pub fn train(
    embedder: &Embedder,
    weights: &VarBuilder,
    pairs: &[TrainingPair],
    options: &TrainOptions,
    trained_by: &str,
    report: &mut dyn FnMut(TrainEvent),
) -> Result<Adapter> {
    let cfg = &embedder.files().config;
    let top = TrainableTop::load(
        weights,
        cfg,
        options.first_layer,
        options.rank,
        options.scale,
    )?;
    let texts = Texts::of(pairs);
    let states = frozen_states(embedder, &texts.texts, options, report)?;
    let untuned = embed_all(&top, &states)?;
    report(measure(0, &untuned, pairs, &texts.sides)?);
    let training: Vec<usize> = (0..pairs.len()).filter(|&i| !pairs[i].kept_apart).collect();
    let mut optimizer = AdamW::new(
        top.vars(),
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut uniform = crate::random::uniform_from(0x7A11);
    for epoch in 1..=options.epochs {
        let batches = batches_by_set(&training, pairs, options.batch_pairs, &mut uniform);
        let steps = batches.len();
        for (step, batch) in batches.iter().enumerate() {
            let batch: Vec<(usize, usize, bool)> = batch
                .iter()
                .map(|&i| (texts.sides[i].0, texts.sides[i].1, pairs[i].same))
                .collect();
            let (ranking, anchor) = losses(&top, &states, &untuned, &batch, options)?;
            let loss = (&ranking + (&anchor * options.anchor)?)?;
            optimizer.backward_step(&loss)?;
            report(TrainEvent::Step {
                epoch,
                step: step + 1,
                steps,
                ranking: ranking.to_scalar()?,
                anchor: anchor.to_scalar()?,
            });
        }
        let tuned = embed_all(&top, &states)?;
        report(measure(epoch, &tuned, pairs, &texts.sides)?);
    }
    Ok(top.adapter(embedder.model_id(), trained_by))
}

/// Every text's hidden states entering the first adapted layer (`[tokens, hidden]`).
fn frozen_states(
    embedder: &Embedder,
    texts: &[String],
    options: &TrainOptions,
    report: &mut dyn FnMut(TrainEvent),
) -> Result<Vec<Tensor>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut ids = embedder
        .token_ids(&refs, Role::Passage)
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    for seq in &mut ids {
        if seq.len() > options.max_tokens {
            let end = seq[seq.len() - 1];
            seq.truncate(options.max_tokens - 1);
            seq.push(end);
        }
    }
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut states: Vec<Option<Tensor>> = vec![None; ids.len()];
    for (done, chunk) in order.chunks(32).enumerate() {
        let batch = TokenBatch::new(&chunk.iter().map(|&i| ids[i].as_slice()).collect::<Vec<_>>());
        let hidden =
            rayon::scope(|_| embedder.encoder().hidden_after(&batch, options.first_layer))?;
        for (&i, &(start, len)) in chunk.iter().zip(batch.spans()) {
            states[i] = Some(hidden.narrow(0, start, len)?.contiguous()?);
        }
        report(TrainEvent::Encoding {
            done: ((done + 1) * 32).min(ids.len()),
            total: ids.len(),
        });
    }
    Ok(states.into_iter().flatten().collect())
}

/// The top layers' embeddings of the texts `which`, in that order.
fn embed_texts(top: &TrainableTop, states: &[Tensor], which: &[usize]) -> Result<Tensor> {
    let parts: Vec<&Tensor> = which.iter().map(|&i| &states[i]).collect();
    let mut spans = Vec::with_capacity(which.len());
    let mut start = 0;
    for part in &parts {
        let len = part.dim(0)?;
        spans.push((start, len));
        start += len;
    }
    top.embed(&Tensor::cat(&parts, 0)?, &spans)
}

/// Every text's embedding through the top layers, without gradients.
fn embed_all(top: &TrainableTop, states: &[Tensor]) -> Result<Tensor> {
    let all: Vec<usize> = (0..states.len()).collect();
    let parts = all
        .chunks(64)
        .map(|chunk| Ok(embed_texts(top, states, chunk)?.detach()))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 0)
}

/// The batch's ranking loss and anchor term.
fn losses(
    top: &TrainableTop,
    states: &[Tensor],
    untuned: &Tensor,
    batch: &[(usize, usize, bool)],
    options: &TrainOptions,
) -> Result<(Tensor, Tensor)> {
    let mut local: HashMap<usize, u32> = HashMap::new();
    let mut which = Vec::new();
    let mut slot = |text: usize| {
        *local.entry(text).or_insert_with(|| {
            which.push(text);
            (which.len() - 1) as u32
        })
    };
    let sides: Vec<(u32, u32)> = batch.iter().map(|&(a, b, _)| (slot(a), slot(b))).collect();
    let tuned = embed_texts(top, states, &which)?;
    let dev = &Device::Cpu;
    let left = Tensor::new(sides.iter().map(|s| s.0).collect::<Vec<_>>(), dev)?;
    let right = Tensor::new(sides.iter().map(|s| s.1).collect::<Vec<_>>(), dev)?;
    let cosines = (tuned.index_select(&left, 0)? * tuned.index_select(&right, 0)?)?.sum(1)?;
    let ranking = (ranking_loss(&cosines, batch, options.sharpness)?
        + in_batch_negatives(&tuned, &sides, batch, options.sharpness)?)?;
    let which_ids = Tensor::new(which.iter().map(|&i| i as u32).collect::<Vec<_>>(), dev)?;
    let before = untuned.index_select(&which_ids, 0)?;
    let anchor = (1.0 - (tuned * before)?.sum(1)?.mean(0)?)?;
    Ok((ranking, anchor))
}

/// Each same-claim pair's second text against the other same-claim pairs' second
/// texts in the batch: cross-entropy of `s · cos` picking its own, so that a
/// claim's restatement stays nearer than restatements of other claims.
fn in_batch_negatives(
    tuned: &Tensor,
    sides: &[(u32, u32)],
    batch: &[(usize, usize, bool)],
    sharpness: f64,
) -> Result<Tensor> {
    let same: Vec<(u32, u32)> = sides
        .iter()
        .zip(batch)
        .filter(|(_, b)| b.2)
        .map(|(s, _)| *s)
        .collect();
    if same.len() < 2 {
        return tuned.sum_all()? * 0.0;
    }
    let dev = tuned.device();
    let left = tuned.index_select(
        &Tensor::new(same.iter().map(|s| s.0).collect::<Vec<_>>(), dev)?,
        0,
    )?;
    let right = tuned.index_select(
        &Tensor::new(same.iter().map(|s| s.1).collect::<Vec<_>>(), dev)?,
        0,
    )?;
    let logits = (left.matmul(&right.t()?)? * sharpness)?;
    let own = Tensor::new((0..same.len() as u32).collect::<Vec<_>>(), dev)?;
    candle_nn::loss::cross_entropy(&logits, &own)
}

/// CoSENT: `log(1 + Σ exp(s · (cos_other − cos_same)))` over every (other, same)
/// pair of pairs in the batch.
pub(super) fn ranking_loss(
    cosines: &Tensor,
    batch: &[(usize, usize, bool)],
    sharpness: f64,
) -> Result<Tensor> {
    let dev = cosines.device();
    let pick = |same: bool| -> Result<Tensor> {
        let rows: Vec<u32> = (0..batch.len() as u32)
            .filter(|&i| batch[i as usize].2 == same)
            .collect();
        cosines.index_select(&Tensor::new(rows, dev)?, 0)
    };
    let (same, other) = (pick(true)?, pick(false)?);
    if same.dim(0)? == 0 || other.dim(0)? == 0 {
        return cosines.sum_all()? * 0.0;
    }
    let gaps = (other.unsqueeze(1)?.broadcast_sub(&same.unsqueeze(0)?)? * sharpness)?;
    let gaps = Tensor::cat(
        &[gaps.flatten_all()?, Tensor::zeros(1, gaps.dtype(), dev)?],
        0,
    )?;
    let max = gaps.max(0)?.detach();
    gaps.broadcast_sub(&max)?.exp()?.sum(0)?.log()? + max
}

/// Average precision of cosine per set on the pairs kept apart.
fn measure(
    epoch: usize,
    embeddings: &Tensor,
    pairs: &[TrainingPair],
    sides: &[(usize, usize)],
) -> Result<TrainEvent> {
    let rows = embeddings.to_vec2::<f32>()?;
    let mut by_set: Vec<(String, Vec<f32>, Vec<bool>)> = Vec::new();
    for (pair, &(a, b)) in pairs.iter().zip(sides).filter(|(p, _)| p.kept_apart) {
        let cosine = rows[a].iter().zip(&rows[b]).map(|(x, y)| x * y).sum();
        if by_set.last().is_none_or(|s| s.0 != pair.set) {
            by_set.push((pair.set.clone(), Vec::new(), Vec::new()));
        }
        let set = by_set.last_mut().expect("pushed above");
        set.1.push(cosine);
        set.2.push(pair.same);
    }
    Ok(TrainEvent::Measured {
        epoch,
        average_precision: by_set
            .into_iter()
            .map(|(set, scores, same)| (set, average_precision(&scores, &same)))
            .collect(),
    })
}

/// The pairs `training` in batches of at most `size`, each from one set, the
/// batches and each set's pairs in a random order drawn from `uniform`.
fn batches_by_set(
    training: &[usize],
    pairs: &[TrainingPair],
    size: usize,
    uniform: &mut impl FnMut() -> f32,
) -> Vec<Vec<usize>> {
    let mut by_set: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in training {
        by_set.entry(pairs[i].set.as_str()).or_default().push(i);
    }
    let mut batches: Vec<Vec<usize>> = by_set
        .into_values()
        .flat_map(|mut set| {
            shuffle(&mut set, uniform);
            set.chunks(size).map(<[usize]>::to_vec).collect::<Vec<_>>()
        })
        .collect();
    shuffle(&mut batches, uniform);
    batches
}

/// Puts `items` in a random order drawn from `uniform` (Fisher–Yates).
fn shuffle<T>(items: &mut [T], uniform: &mut impl FnMut() -> f32) {
    for i in (1..items.len()).rev() {
        let j = ((uniform() * (i + 1) as f32) as usize).min(i);
        items.swap(i, j);
    }
}
