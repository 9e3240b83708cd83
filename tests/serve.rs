//! `stancemap serve` on an ephemeral port, with the real model: same vectors as
//! `stancemap embed`, status codes for bad requests, overload, graceful shutdown.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running server; killed when dropped.
struct Server {
    child: Child,
    url: String,
    /// What it has printed on stderr since it started listening.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let child = Command::new(env!("CARGO_BIN_EXE_stancemap"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        // From here on, dropping `server` (a panic included) kills and reaps it.
        let mut server = Server {
            child,
            url: String::new(),
            log: Arc::default(),
        };
        let mut stderr = BufReader::new(server.child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap_or(0) > 0,
                "the server exited early"
            );
            if let Some(at) = line.find("http://") {
                server.url = line[at..].trim().to_string();
                // Keep draining stderr so the server never blocks on it.
                let log = server.log.clone();
                std::thread::spawn(move || {
                    for line in stderr.lines().map_while(|l| l.ok()) {
                        log.lock().unwrap().push(line);
                    }
                });
                return server;
            }
        }
    }

    /// POSTs `body` to /v1/embeddings: (status, parsed body, Retry-After).
    fn embed(&self, body: &str) -> (u16, Value, Option<String>) {
        let result = ureq::post(&format!("{}/v1/embeddings", self.url))
            .set("Content-Type", "application/json")
            .timeout(Duration::from_secs(300))
            .send_string(body);
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = response.status();
        let retry = response.header("Retry-After").map(str::to_string);
        let value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        (status, value, retry)
    }

    /// A raw connection to the server, with a 20-second read timeout.
    fn connect(&self) -> (TcpStream, String) {
        let address = self.url.trim_start_matches("http://").to_string();
        let stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        (stream, address)
    }

    fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn vectors(body: &Value) -> Vec<Vec<f32>> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Texts of a seed article, one per line.
fn seed_lines() -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/003_1a81006812cdf2dd.txt"),
    )
    .unwrap();
    text.split(['。', '\n'])
        .map(str::trim)
        .filter(|s| s.chars().count() > 8)
        .map(str::to_string)
        .collect()
}

#[test]
fn concurrent_clients_get_the_vectors_of_embed() {
    let texts: Vec<String> = seed_lines().into_iter().take(16).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, texts.join("\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let out = common::stancemap(&[
        "embed",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let expected: Vec<Vec<f32>> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            vectors(&json!({"data": [v]})).remove(0)
        })
        .collect();

    let server = Server::start(&[]);
    std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .iter()
            .map(|t| {
                let server = &server;
                s.spawn(move || server.embed(&json!({"input": t, "model": "m"}).to_string()))
            })
            .collect();
        for (h, want) in handles.into_iter().zip(&expected) {
            let (status, body, _) = h.join().unwrap();
            assert_eq!(status, 200, "{body}");
            let got = vectors(&body).remove(0);
            assert!(cosine(&got, want) > 0.99999, "{}", cosine(&got, want));
            assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 2);
        }
    });
    // Several inputs in one request keep their order; base64 decodes to the same.
    let (status, body, _) = server
        .embed(&json!({"input": [texts[3], texts[1]], "encoding_format": "base64"}).to_string());
    assert_eq!(status, 200);
    assert_eq!(body["data"][1]["index"], 1);
    let models: Value = ureq::get(&format!("{}/v1/models", server.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "multilingual-e5-small");
}

#[test]
fn bad_requests_get_their_status() {
    let server = Server::start(&["--max-inputs", "4", "--max-body-mib", "1"]);
    for (body, status) in [
        ("{\"input\": ", 400),
        ("{\"model\": \"m\"}", 400),
        ("{\"input\": []}", 400),
        ("{\"input\": \"\"}", 400),
        ("{\"input\": [\"a\", 7]}", 400),
        ("{\"input\": \"a\", \"encoding_format\": \"hex\"}", 400),
        ("{\"input\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", 413),
    ] {
        let (got, value, _) = server.embed(body);
        assert_eq!(got, status, "{body}: {value}");
        assert!(value["error"]["message"].is_string(), "{value}");
    }
    // A body past the limit is refused from its Content-Length, before it is read
    // (a client still writing it may see the connection close, so only headers go).
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /v1/embeddings HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    let (status, _, _) = server.embed("{\"input\": \"still fine\"}");
    assert_eq!(status, 200);
}

#[test]
fn too_many_tokens_and_other_widths_are_refused() {
    let server = Server::start(&["--max-input-tokens", "50", "--max-request-tokens", "60"]);
    let long = "rare earths ".repeat(40);
    let (status, value, _) = server.embed(&format!("{{\"input\": \"{long}\"}}"));
    assert_eq!(status, 413, "{value}");
    let message = value["error"]["message"].as_str().unwrap();
    assert!(message.contains("tokens; the limit is 50"), "{message}");
    let (status, value, _) = server.embed("{\"input\": \"a\", \"dimensions\": 64}");
    assert_eq!(status, 400, "{value}");
    assert_eq!(value["error"]["param"], "dimensions");
    let (status, _, _) = server.embed("{\"input\": \"a\", \"dimensions\": 384}");
    assert_eq!(status, 200);
}

#[test]
fn overload_is_refused_and_nothing_accepted_is_lost() {
    let server = Server::start(&["--queue", "1", "--max-batch-tokens", "16"]);
    let lines = seed_lines();
    let request = json!({ "input": lines }).to_string();
    let results: Vec<(u16, Value, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| server.embed(&request))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = results.iter().filter(|r| r.0 == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(accepted + refused.len(), 6, "{results:?}");
    assert!(accepted >= 1 && !refused.is_empty(), "{accepted} accepted");
    for r in &refused {
        assert_eq!(r.2.as_deref(), Some("1"));
        assert_eq!(r.1["error"]["type"], "server_overloaded");
    }
    for r in results.iter().filter(|r| r.0 == 200) {
        assert_eq!(r.1["data"].as_array().unwrap().len(), lines.len());
    }
}

#[test]
fn sigterm_finishes_the_request_in_flight() {
    let mut server = Server::start(&[]);
    let lines = seed_lines();
    let texts: Vec<&String> = lines.iter().cycle().take(lines.len() * 3).collect();
    let request = json!({ "input": texts }).to_string();
    std::thread::scope(|s| {
        let in_flight = s.spawn(|| server.embed(&request));
        std::thread::sleep(Duration::from_millis(1000));
        server.terminate();
        let (status, body, _) = in_flight.join().unwrap();
        assert_eq!(status, 200, "{body}");
    });
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn metrics_count_requests_by_status() {
    let server = Server::start(&[]);
    assert_eq!(server.embed("{\"input\": \"rare earths\"}").0, 200);
    assert_eq!(server.embed("{\"input\": []}").0, 400);
    let response = ureq::get(&format!("{}/metrics", server.url))
        .call()
        .unwrap();
    assert!(response.content_type().contains("openmetrics"));
    let text = response.into_string().unwrap();
    for line in [
        "stancemap_requests_total{status=\"200\"} 1",
        "stancemap_requests_total{status=\"400\"} 1",
        "stancemap_queue_depth 0",
        "stancemap_dropped_requests_total 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(
        text.contains("stancemap_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("stancemap_batch_sequences_count 1"), "{text}");
}

#[test]
fn a_half_sent_request_cannot_hold_shutdown() {
    let mut server = Server::start(&["--shutdown-grace-s", "1"]);
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    // Headers that never end, as a slow client (or slowloris) sends them.
    write!(
        stream,
        "POST /v1/embeddings HTTP/1.1\r\nHost: {address}\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    for _ in 0..200 {
        if let Some(exit) = server.child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server was still running 20 s after SIGTERM");
}

#[test]
fn a_client_that_stalls_its_headers_is_disconnected() {
    let server = Server::start(&["--header-timeout-s", "1"]);
    let (mut stream, address) = server.connect();
    let started = Instant::now();
    // Slowloris: headers begun and never finished.
    write!(
        stream,
        "POST /v1/embeddings HTTP/1.1\r\nHost: {address}\r\n"
    )
    .unwrap();
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        read.is_ok() && waited < Duration::from_secs(10),
        "still connected after {waited:?}: {read:?}"
    );
    // An idle keep-alive connection is closed the same way.
    let (mut idle, _) = server.connect();
    let started = Instant::now();
    assert!(idle.read_to_end(&mut rest).is_ok());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.embed("{\"input\": \"still served\"}").0, 200);
}

#[test]
fn a_client_that_stalls_its_body_gets_408() {
    let server = Server::start(&["--body-timeout-s", "1"]);
    let (mut stream, address) = server.connect();
    write!(
        stream,
        "POST /v1/embeddings HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\nX-Request-Id: stalled-1\r\n\r\n{{\"input\": "
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("x-request-id: stalled-1"),
        "{reply}"
    );
    assert!(reply.contains("did not arrive within 1 s"), "{reply}");
}

#[test]
fn each_request_has_an_id_in_its_response_and_the_log() {
    let server = Server::start(&[]);
    let url = format!("{}/v1/embeddings", server.url);
    let given = ureq::post(&url)
        .set("X-Request-Id", "client-7")
        .send_string("{\"input\": \"rare earths\"}")
        .unwrap();
    assert_eq!(given.header("x-request-id"), Some("client-7"));
    // An id that is not a short token is replaced by the server's own.
    let replaced = match ureq::post(&url)
        .set("X-Request-Id", &"x".repeat(65))
        .send_string("{\"input\": []}")
    {
        Err(ureq::Error::Status(400, r)) => r,
        other => panic!("expected 400, got {other:?}"),
    };
    let own = replaced.header("x-request-id").unwrap().to_string();
    assert!(own.parse::<u64>().is_ok(), "{own}");
    let expected = [
        "request client-7: 200, ".to_string(),
        format!("request {own}: 400, 0 tokens"),
    ];
    for _ in 0..50 {
        let log = server.log.lock().unwrap().join("\n");
        if expected.iter().all(|e| log.contains(e.as_str())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{expected:?} not in the log: {:?}",
        server.log.lock().unwrap()
    );
}

#[test]
fn bench_against_a_running_server_reports_every_engine() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (json_path, chart) = (dir.path().join("a.json"), dir.path().join("a.svg"));
    let out = common::stancemap(&[
        "bench",
        "--against",
        &format!("self={}", server.url),
        "--limit",
        "12",
        "--batch-size",
        "4",
        "--concurrency",
        "1,3",
        "--json",
        json_path.to_str().unwrap(),
        "--chart",
        chart.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["passages"], 12);
    assert!(report["cpu"]["model"].is_string());
    let runs = report["runs"].as_array().unwrap();
    let engines: Vec<(&str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["engine"].as_str().unwrap(),
                r["concurrency"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        engines,
        [("stancemap", 1), ("stancemap", 3), ("self", 1), ("self", 3)]
    );
    for r in runs {
        assert!(r["tokens_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap());
        // The server runs the same model: its vectors agree with in-process ones.
        assert!(r["agreement_min"].as_f64().unwrap() > 0.9999, "{r}");
        assert!(r["ratio_to_fastest_peer"].as_f64().unwrap() > 0.0);
    }
    // The short query, sent alone to each engine.
    let queries = report["queries"].as_array().unwrap();
    let names: Vec<&str> = queries
        .iter()
        .map(|q| q["engine"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stancemap", "self"]);
    for q in queries {
        assert!(q["p50_ms"].as_f64().unwrap() > 0.0, "{q}");
        assert!(q["p99_ms"].as_f64().unwrap() >= q["p50_ms"].as_f64().unwrap());
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<title>").count() == 4);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| self | 3 |"), "{table}");
    assert!(table.contains("short query alone"), "{table}");
}
