//! `stancemap eval` and `stancemap eval stance`: quality on labelled sets.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use stancemap::cluster::Grouping;
use stancemap::eval;
use stancemap::eval::stance::{RowClaims, StanceScores, StanceSet};
use stancemap::same_claim::fit::{self, EncoderIdentity};
use stancemap::stance::{Context, Reach};
use stancemap::tune::{TrainEvent, TrainOptions};
use stancemap::Engine;
use stancemap::{output, Role, ScorerKind, DEFAULT_CUT, DEFAULT_DUPLICATE_THRESHOLD};

use super::args::{cache_unless, AlgorithmKind, AlignArgs, EngineArgs, ReaderArgs};

/// Quality on labelled data: pair sets (.tsv) and clustering sets (.jsonl);
/// `eval stance` for stance sets.
#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    stance: Option<EvalCommand>,
    /// Pair sets (`text1 text2 label` TSV) and clustering sets (`{"text","label"}` JSONL).
    #[arg(required = true)]
    sets: Vec<PathBuf>,
    /// Agglomerative cuts (same-claim probabilities) to score, comma-separated
    /// (default: the cluster command's).
    #[arg(long, value_delimiter = ',')]
    cut: Vec<f32>,
    /// DBSCAN radii (cosine distances) to score, comma-separated (default: the
    /// cluster command's).
    #[arg(long, value_delimiter = ',')]
    max_distance: Vec<f32>,
    /// Clustering algorithms to score, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "agglomerative"
    )]
    algorithm: Vec<AlgorithmKind>,
    /// DBSCAN's core size / HDBSCAN's least cluster size.
    #[arg(long, default_value_t = 2)]
    min_points: usize,
    /// Embed every text afresh instead of using the on-disk cache.
    #[arg(long)]
    no_cache: bool,
    /// Also cluster the texts of pair sets, the texts that positive pairs join
    /// making a gold group (for the translation set: does a sentence land with
    /// its translation?).
    #[arg(long)]
    pairs_as_clusters: bool,
    /// Duplicate threshold (same-claim probability) at which pair
    /// precision/recall is reported.
    #[arg(long, default_value_t = DEFAULT_DUPLICATE_THRESHOLD)]
    threshold: f32,
    /// Use only the first N rows of each set.
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    align: AlignArgs,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Stance sets (`{"target","text","label"}` JSONL, labels favor|against|none): per
    /// target, a frame from the first half of its rows, scored on the rest; plus the
    /// zero-shot case (a frame from one target scored on another).
    Stance(EvalStanceArgs),
    /// Fit the same-claim model on pair sets (`text1 text2 label` TSV): a quarter
    /// of each set's rows (by a hash of the first text) is kept apart to measure
    /// calibration, and `eval` scores only that quarter of these sets.
    FitSameClaim(FitArgs),
    /// Train a low-rank adapter that tunes the encoder's top layers for claims, on
    /// pair sets (`text1 text2 label` TSV; same labels as fit-same-claim). The
    /// quarter of rows fit-same-claim keeps apart is never trained on; its
    /// average precision is printed after each epoch.
    FitAdapter(FitAdapterArgs),
}

#[derive(Args)]
struct FitAdapterArgs {
    #[arg(required = true)]
    sets: Vec<PathBuf>,
    /// Where to write the adapter (safetensors).
    #[arg(short, long)]
    output: PathBuf,
    /// The first layer adapted (counting from 0); it and those above it are.
    #[arg(long, default_value_t = 8)]
    first_layer: usize,
    /// Rank of each update.
    #[arg(long, default_value_t = 8)]
    rank: usize,
    /// Passes over the training pairs (the built-in adapter took 2).
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Labelled pairs per step.
    #[arg(long, default_value_t = 32)]
    batch_pairs: usize,
    #[arg(long, default_value_t = 5e-4)]
    learning_rate: f64,
    /// Weight of the term that keeps embeddings near the untuned ones.
    #[arg(long, default_value_t = 4.0)]
    anchor: f64,
    /// Longest sequence trained on, in tokens (longer texts are cut).
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args)]
struct FitArgs {
    #[arg(required = true)]
    sets: Vec<PathBuf>,
    /// Where to write the model (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// Embed every text afresh instead of using the on-disk cache.
    #[arg(long)]
    no_cache: bool,
    /// A set's weight against the others' 1, as NAME=W (its file name without
    /// the extension; W in (0, 10]), e.g. one_story=0.5 for a set of noisy
    /// negatives; repeatable.
    #[arg(long, value_name = "NAME=W", value_parser = parse_set_weight)]
    set_weight: Vec<(String, f64)>,
    #[command(flatten)]
    align: AlignArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `NAME=W` with W a number in (0, 10].
fn parse_set_weight(text: &str) -> std::result::Result<(String, f64), String> {
    let (name, weight) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=W, got {text:?}"))?;
    let weight: f64 = weight
        .parse()
        .map_err(|_| format!("{weight:?} is not a number"))?;
    if name.is_empty() || !(weight > 0.0 && weight <= 10.0) {
        return Err(format!(
            "expected a set name and a weight in (0, 10], got {text:?}"
        ));
    }
    Ok((name.to_string(), weight))
}

#[derive(Args)]
struct EvalStanceArgs {
    #[arg(required = true)]
    sets: Vec<PathBuf>,
    /// Scorers to compare, comma-separated (prototype, kernel, logistic, blend).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "prototype,kernel,logistic,blend"
    )]
    scorer: Vec<ScorerKind>,
    /// Softmax temperatures to try, comma-separated (default: each scorer's own).
    #[arg(long, value_delimiter = ',')]
    temperature: Vec<f32>,
    /// Most training rows per target.
    #[arg(long, default_value_t = 300)]
    max_examples: usize,
    /// Use only the first N rows of each set.
    #[arg(long)]
    limit: Option<usize>,
    /// Also split each text into claims as `cluster` splits an article and score
    /// the claim nearest the target alone and with its neighbouring claims or its
    /// article (frames fitted on the claims alone, as frame examples are).
    #[arg(long)]
    context: bool,
    /// Embed every text afresh instead of using the on-disk cache.
    #[arg(long)]
    no_cache: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The contexts `eval stance --context` compares.
const CONTEXTS: [Context; 9] = [
    Context::ALONE,
    Context {
        reach: Reach::Neighbours(1),
        weight: 0.25,
    },
    Context {
        reach: Reach::Neighbours(1),
        weight: 0.5,
    },
    Context {
        reach: Reach::Neighbours(1),
        weight: 1.0,
    },
    Context {
        reach: Reach::Neighbours(2),
        weight: 0.5,
    },
    Context {
        reach: Reach::Neighbours(2),
        weight: 1.0,
    },
    Context {
        reach: Reach::Article,
        weight: 0.5,
    },
    Context {
        reach: Reach::Article,
        weight: 1.0,
    },
    Context {
        reach: Reach::Article,
        weight: 2.0,
    },
];

impl EvalArgs {
    /// The engine options of whichever form was run.
    pub fn engine(&self) -> &EngineArgs {
        match &self.stance {
            Some(EvalCommand::Stance(stance)) => &stance.engine,
            Some(EvalCommand::FitSameClaim(fit)) => &fit.engine,
            Some(EvalCommand::FitAdapter(fit)) => &fit.engine,
            None => &self.engine,
        }
    }
}

pub fn run(args: EvalArgs) -> Result<()> {
    match &args.stance {
        Some(EvalCommand::Stance(stance)) => run_stance(stance),
        Some(EvalCommand::FitSameClaim(fit)) => run_fit(fit),
        Some(EvalCommand::FitAdapter(fit)) => run_fit_adapter(fit),
        None => run_sets(&args),
    }
}

fn run_stance(args: &EvalStanceArgs) -> Result<()> {
    let engine = args
        .engine
        .builder()
        .cache(cache_unless(args.no_cache))
        .build()?;
    println!("{}", eval::stance::TABLE_HEADER);
    for path in &args.sets {
        let set = StanceSet::read(path, args.limit)?;
        let emb = engine.embed(&set.texts(), Role::Passage)?;
        for_each_scorer(args, |kind, t| {
            println!(
                "{}",
                set.score(&emb, kind, t, args.max_examples).table_row()
            );
        });
        if args.context {
            score_in_context(&engine, &set, args)?;
        }
    }
    Ok(())
}

/// Calls `score(scorer, temperature)` for every scorer and temperature asked for.
fn for_each_scorer(args: &EvalStanceArgs, mut score: impl FnMut(ScorerKind, f32)) {
    for &kind in &args.scorer {
        let temperatures = if args.temperature.is_empty() {
            vec![kind.default_temperature()]
        } else {
            args.temperature.clone()
        };
        for t in temperatures {
            score(kind, t);
        }
    }
}

/// Scores each row's claim nearest its target in every context of [`CONTEXTS`].
fn score_in_context(engine: &Engine, set: &StanceSet, args: &EvalStanceArgs) -> Result<()> {
    let split = RowClaims::split(set);
    let claims: Vec<&str> = split.claims.iter().map(String::as_str).collect();
    let claim_emb = engine.embed(&claims, Role::Passage)?;
    let target_emb = engine.embed(&set.targets(), Role::Passage)?;
    let chosen = split.nearest_to_targets(&claim_emb, &target_emb);
    let alone = split.read(&claim_emb, &chosen, Context::ALONE);
    for context in CONTEXTS {
        let read = split.read(&claim_emb, &chosen, context);
        for_each_scorer(args, |kind, t| {
            let view = format!("nearest claim {context}");
            let scores: StanceScores =
                set.score_views(&alone, &read, kind, t, args.max_examples, view);
            println!("{}", scores.table_row());
        });
    }
    Ok(())
}

fn run_sets(args: &EvalArgs) -> Result<()> {
    let builder = args
        .engine
        .builder()
        .cache(cache_unless(args.no_cache))
        .duplicate_threshold(args.threshold);
    let groupings = groupings(args)?;
    let engine = args.reader.apply(args.align.apply(builder)).build()?;
    let groupings = groupings
        .into_iter()
        .map(|g| g.with_default_radius(engine.default_max_distance()))
        .collect::<Result<Vec<_>, _>>()?;
    let read = |pairs: &[(&str, &str)]| Ok(engine.read_pairs(pairs)?.unwrap_or_default());
    let mut opts = eval_options(&engine, args.threshold, args.limit)?;
    if engine.has_pair_reader() {
        opts.read_pairs = Some(&read);
    }
    let mut embed = |texts: &[&str]| engine.embed(texts, Role::Passage);
    let is_pairs = |set: &Path| set.extension().is_some_and(|e| e == "tsv");
    if args.sets.iter().any(|s| is_pairs(s)) {
        println!("{}", eval::PairScores::table_header(args.threshold));
    }
    let mut cluster_rows = Vec::new();
    for set in &args.sets {
        if is_pairs(set) {
            println!("{}", eval::pairs(set, &mut embed, &opts)?.table_row());
        }
        if !is_pairs(set) || args.pairs_as_clusters {
            cluster_rows.extend(eval::clusters(set, &mut embed, &groupings, &opts)?);
        }
    }
    if !cluster_rows.is_empty() {
        println!("\n{}", eval::ClusterScores::TABLE_HEADER);
    }
    for c in cluster_rows {
        println!("{}", c.table_row());
    }
    Ok(())
}

/// How the engine's sets are scored: the parallel sentences measured the
/// offset, so they are not scored (nor are the rows the same-claim model was
/// fitted on).
fn eval_options(
    engine: &Engine,
    threshold: f32,
    limit: Option<usize>,
) -> Result<eval::EvalOptions<'_>> {
    Ok(eval::EvalOptions {
        threshold,
        offset: engine.language_offset()?,
        same_claim: engine.same_claim_model()?,
        limit,
        held_out: engine.alignment_sentences(),
        read_pairs: None,
    })
}

fn run_fit(args: &FitArgs) -> Result<()> {
    output::check_file(&args.output)?;
    let names: Vec<String> = args.sets.iter().map(|p| eval::set_name(p)).collect();
    if let Some((name, _)) = args.set_weight.iter().find(|(n, _)| !names.contains(n)) {
        anyhow::bail!("--set-weight {name}: no set of that name among {names:?}");
    }
    let builder = args.engine.builder().cache(cache_unless(args.no_cache));
    let engine = args.align.apply(builder).build()?;
    let offset = engine.language_offset()?;
    let held_out = engine.alignment_sentences();
    let mut embed = |texts: &[&str]| engine.embed(texts, Role::Passage);
    let mut sets = args
        .sets
        .iter()
        .map(|set| eval::labelled_pairs(set, &mut embed, offset, &held_out))
        .collect::<stancemap::Result<Vec<_>>>()?;
    for (name, weight) in &args.set_weight {
        sets.iter_mut()
            .filter(|s| &s.name == name)
            .for_each(|s| s.weight = *weight);
    }
    let identity = EncoderIdentity {
        name: engine.model_id().to_string(),
        probe: engine.probe()?,
        adapter: engine.adapter_digest().map(str::to_string),
    };
    let refit = std::env::args().collect::<Vec<_>>().join(" ");
    let model = fit::fit(&sets, identity, &refit)?;
    let json = serde_json::to_string_pretty(&model)? + "\n";
    output::write_atomically(&args.output, |out| out.write_all(json.as_bytes()))?;
    println!("| set | calibration pairs | Brier | ECE | AP |\n|---|---|---|---|---|");
    for (set, c) in &model.calibration {
        println!(
            "| {set} | {} | {:.3} | {:.3} | {:.3} |",
            c.pairs, c.brier, c.ece, c.average_precision
        );
    }
    eprintln!(
        "stancemap: wrote the same-claim model to {}",
        args.output.display()
    );
    Ok(())
}

fn run_fit_adapter(args: &FitAdapterArgs) -> Result<()> {
    output::check_file(&args.output)?;
    let engine = args.engine.builder_as_published().build()?;
    let held_out = engine.alignment_sentences();
    let mut pairs = Vec::new();
    for set in &args.sets {
        pairs.extend(eval::training_pairs(set, &held_out)?);
    }
    let options = TrainOptions {
        first_layer: args.first_layer,
        rank: args.rank,
        epochs: args.epochs,
        batch_pairs: args.batch_pairs,
        learning_rate: args.learning_rate,
        anchor: args.anchor,
        max_tokens: args.max_tokens,
        ..TrainOptions::default()
    };
    let trained_by = std::env::args().collect::<Vec<_>>().join(" ");
    let adapter = engine.train_adapter(&pairs, &options, &trained_by, &mut print_training)?;
    let bytes = adapter.to_bytes()?;
    output::write_atomically(&args.output, |out| out.write_all(&bytes))?;
    eprintln!("stancemap: wrote the adapter to {}", args.output.display());
    Ok(())
}

/// Training's progress on stderr, its measurements as table rows on stdout.
fn print_training(event: TrainEvent) {
    match event {
        TrainEvent::Encoding { done, total } if done == total || done % 2048 == 0 => {
            eprintln!("stancemap: frozen layers: {done}/{total} texts")
        }
        TrainEvent::Step {
            epoch,
            step,
            steps,
            ranking,
            anchor,
        } if step % 20 == 0 || step == steps => {
            eprintln!("stancemap: epoch {epoch} step {step}/{steps}: ranking {ranking:.3}, anchor {anchor:.4}")
        }
        TrainEvent::Measured {
            epoch,
            average_precision,
        } => {
            let row: Vec<String> = average_precision
                .iter()
                .map(|(set, ap)| format!("{set} {ap:.3}"))
                .collect();
            println!(
                "epoch {epoch}: AP on the part kept apart: {}",
                row.join(", ")
            );
        }
        _ => {}
    }
}

/// Every algorithm at every cut or radius asked for (HDBSCAN has neither),
/// checked; DBSCAN with no radius asked for takes the encoder's default.
fn groupings(args: &EvalArgs) -> Result<Vec<Grouping>> {
    let cuts = match args.cut.as_slice() {
        [] => vec![DEFAULT_CUT],
        asked => asked.to_vec(),
    };
    let radii: Vec<Option<f32>> = match args.max_distance.as_slice() {
        [] => vec![None],
        asked => asked.iter().copied().map(Some).collect(),
    };
    let mut groupings = Vec::new();
    for kind in &args.algorithm {
        let settings: Vec<(f32, Option<f32>)> = match kind {
            AlgorithmKind::Agglomerative => cuts.iter().map(|&c| (c, None)).collect(),
            AlgorithmKind::Dbscan => radii.iter().map(|&r| (DEFAULT_CUT, r)).collect(),
            AlgorithmKind::Hdbscan => vec![(DEFAULT_CUT, None)],
        };
        for (cut, radius) in settings {
            groupings.push(kind.with(cut, radius, args.min_points).check()?);
        }
    }
    Ok(groupings)
}
