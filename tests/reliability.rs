//! Inputs and outputs that once gave a wrong result without a word: each case
//! now reads right or fails with a message, before any slow work where it can.

mod common;

use std::path::Path;

use common::{stancemap, stderr};
use stancemap::corpus::Lang;
use stancemap::Corpus;

const ZH: &str = "稀土出口管制\n2025年10月9日，中国商务部公告扩展稀土管制，将五种元素新增至限制名单。巴基斯坦的第一批货物仅经初步浓缩，并非高纯度成品。美国本土企业的重稀土分离能力几乎空白。\n";

fn read(dir: &Path) -> Corpus {
    Corpus::read(&[dir.to_path_buf()]).expect("corpus")
}

#[test]
fn a_few_bad_bytes_keep_a_chinese_article_chinese_and_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = ZH.as_bytes().to_vec();
    let at = ZH.find("巴基斯坦").unwrap();
    bytes[at] = 0xFF;
    std::fs::write(dir.path().join("a.txt"), &bytes).unwrap();
    let corpus = read(dir.path());
    assert_eq!(corpus.articles[0].lang, Lang::Zh);
    assert!(corpus.claims.iter().any(|c| c.text.contains("中国商务部")));
    let warning = corpus.warnings.join("\n");
    assert!(
        warning.contains("a.txt:2: ") && warning.contains(&format!("the first at byte {at}")),
        "{warning}"
    );
}

#[test]
fn utf16_without_a_bom_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = ZH.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(dir.path().join("a.txt"), bytes).unwrap();
    let corpus = read(dir.path());
    assert_eq!(corpus.articles[0].lang, Lang::Zh);
    assert!(corpus.claims.iter().any(|c| c.text.contains("中国商务部")));
}

#[cfg(unix)]
#[test]
fn a_link_loop_is_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a.txt"), ZH).unwrap();
    std::os::unix::fs::symlink(dir.path(), sub.join("back")).unwrap();
    std::os::unix::fs::symlink(sub.join("a.txt"), dir.path().join("same.txt")).unwrap();
    let corpus = read(dir.path());
    assert_eq!(corpus.articles.len(), 1, "{:?}", corpus.warnings);
    let warnings = corpus.warnings.join("\n");
    assert!(warnings.contains("a folder already read"), "{warnings}");
    assert!(warnings.contains("a file already read"), "{warnings}");
}

#[test]
fn two_articles_with_one_id_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["x", "y"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::write(dir.path().join(folder).join("same.txt"), ZH).unwrap();
    }
    let corpus = read(dir.path());
    let ids: Vec<&str> = corpus.articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["same", "same~2"]);
    let second: Vec<&str> = corpus
        .claims
        .iter()
        .filter(|c| c.article == "same~2")
        .map(|c| c.id.as_str())
        .collect();
    assert!(!second.is_empty());
    assert!(corpus.warnings.iter().any(|w| w.contains("already used")));
}

#[test]
fn empty_articles_warn_and_a_corpus_without_claims_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), "").unwrap();
    let err = Corpus::read(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(err.to_string().contains("no claims found"), "{err}");
    std::fs::write(dir.path().join("full.txt"), ZH).unwrap();
    let corpus = read(dir.path());
    assert!(
        corpus
            .warnings
            .iter()
            .any(|w| w.contains("empty.txt: article \"empty\" has no claims")),
        "{:?}",
        corpus.warnings
    );
}

#[test]
fn boilerplate_and_markdown_headings_are_no_claims() {
    let dir = tempfile::tempdir().unwrap();
    let md = "# Rare earths, again\n\n## Section one\n\nChina controls most of the world's rare-earth refining capacity today.\n\n免责声明：本文仅代表作者观点。\n\nAll rights reserved.\n";
    std::fs::write(dir.path().join("a.md"), md).unwrap();
    let corpus = read(dir.path());
    assert_eq!(corpus.articles[0].title, "Rare earths, again");
    let texts: Vec<&str> = corpus.claims.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "Rare earths, again",
            "China controls most of the world's rare-earth refining capacity today."
        ]
    );
}

#[test]
fn bad_flags_and_outputs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o").to_str().unwrap().to_string();
    for (flag, value, needle) in [
        ("--threshold", "NaN", "duplicate threshold"),
        ("--threshold", "2", "probability in (0, 1]"),
        ("--cut", "-0.5", "probability in (0, 1]"),
        ("--same-claim", "no/such/model.json", "no/such/model.json"),
    ] {
        let flag = format!("{flag}={value}");
        let run = stancemap(&["cluster", "seeds/", &flag, "-o", &out]);
        let err = stderr(&run);
        assert_eq!(run.status.code(), Some(1), "{flag} {value}: {err}");
        assert!(err.contains(needle), "{flag} {value}: {err}");
        assert!(
            !err.contains("claims"),
            "{flag} {value} checked after reading: {err}"
        );
    }
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let run = stancemap(&["cluster", "seeds/", "-o", file.to_str().unwrap()]);
    let err = stderr(&run);
    assert!(err.contains("is a file, not a folder"), "{err}");
    assert!(
        !err.contains("claims"),
        "output checked after reading: {err}"
    );
    let inside = file.join("pairs.jsonl");
    let run = stancemap(&["dedup", "seeds/", "-o", inside.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    assert!(!stderr(&run).contains("claims"), "{}", stderr(&run));
}

#[test]
fn markdown_shows_html_in_articles_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let article = dir.path().join("a.txt");
    std::fs::write(&article, "<script>alert(1)</script> Rare earths <img src=x onerror=alert(2)>\nChina said the controls stay in force. Pakistan shipped its first ore.\n").unwrap();
    let out = dir.path().join("o");
    let run = stancemap(&[
        "cluster",
        article.to_str().unwrap(),
        "--no-cache",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(!md.contains("<script>") && !md.contains("<img"), "{md}");
    assert!(md.contains("&lt;script&gt;"), "{md}");
}

#[cfg(unix)]
#[test]
fn a_write_cut_short_leaves_the_previous_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let previous = "{\"version\": 1}\n";
    std::fs::write(out.join("report.json"), previous).unwrap();
    // Files may grow to 1 KiB only: the report's write fails part way, as on a
    // full disk.
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -f 2; exec '{}' cluster seeds/000_5584f811bccb15a3.txt --no-cache -o '{}'",
            env!("CARGO_BIN_EXE_stancemap"),
            out.display()
        ))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!run.status.success(), "{}", stderr(&run));
    assert_eq!(
        std::fs::read_to_string(out.join("report.json")).unwrap(),
        previous
    );
}

#[test]
fn a_byte_order_mark_is_accepted_by_embed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "\u{feff}{\"id\": \"a\", \"text\": \"稀土\"}\n").unwrap();
    let run = stancemap(&["embed", input.to_str().unwrap(), "-o", "-"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let line: serde_json::Value =
        serde_json::from_slice(run.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["id"], "a");
}

#[test]
fn embed_and_stance_decode_input_as_cluster_does() {
    let dir = tempfile::tempdir().unwrap();
    let line = ZH.lines().nth(1).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let utf8 = write("utf8.txt", line.as_bytes());
    let gbk = write("gbk.txt", &encoding_rs::GBK.encode(line).0);
    let mut damaged = format!("{line}\n{line}").into_bytes();
    damaged[line.len() + 1] = 0xFF;
    let damaged = write("damaged.txt", &damaged);
    let run = stancemap(&["embed", &utf8, &gbk, &damaged, "-o", "-"]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("damaged.txt:2: 1 invalid UTF-8"), "{err}");
    let rows: Vec<serde_json::Value> = run
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    // The GBK file reads as the same text, so it gets the same vector.
    assert_eq!(rows[0]["embedding"], rows[1]["embedding"]);
    assert_eq!(rows[0]["embedding"], rows[2]["embedding"]);
    let run = stancemap(&["stance", &gbk, "-o", "-"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("中国商务部"));
}

#[test]
fn a_huge_passage_is_refused_before_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.txt");
    std::fs::write(&input, "稀土".repeat(50 << 20 >> 3)).unwrap();
    let run = stancemap(&["embed", input.to_str().unwrap(), "-o", "-"]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("big.txt:1: the line is longer than") && err.contains("split it"),
        "{err}"
    );
}

#[test]
fn a_killed_run_resumes_from_the_cache_with_the_same_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let articles: Vec<String> = (0..1200)
        .map(|i| {
            let text = format!("第{i}批稀土样品于十月运往美国，价值{i}万美元。");
            serde_json::json!({"id": format!("a{i}"), "text": text}).to_string()
        })
        .collect();
    std::fs::write(&input, articles.join("\n")).unwrap();
    let cache = dir.path().join("cache");
    let cluster = |out: &str, extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stancemap"));
        let out = dir.path().join(out);
        command
            .args([
                "cluster",
                input.to_str().unwrap(),
                "--parquet-embeddings",
                "-o",
            ])
            .arg(&out)
            .args(extra)
            .env("STANCEMAP_CACHE", &cache)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        (command, out.join("claims.parquet"))
    };
    // Killed once the first batch of vectors is in the cache: 1,024 records of
    // 1,584 bytes (384 floats and their key), all written, not the first bytes
    // of them (a kill mid-write leaves a torn batch, rightly cut off on resume).
    const FIRST_BATCH_BYTES: u64 = 1024 * 1584;
    let mut first = cluster("killed", &[]).0.spawn().unwrap();
    let cache_size = || {
        std::fs::read_dir(&cache).map_or(0, |files| {
            files.flatten().map(|f| f.metadata().unwrap().len()).sum()
        })
    };
    let started = std::time::Instant::now();
    while cache_size() < FIRST_BATCH_BYTES && started.elapsed().as_secs() < 240 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        cache_size() >= FIRST_BATCH_BYTES,
        "the first batch was not cached in 240 s"
    );
    let (mut command, resumed) = cluster("resumed", &[]);
    let run = command.output().unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    let cached: usize = err
        .split(" of 1200 claims from the embedding cache")
        .next()
        .and_then(|s| s.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no cache hits in {err}"));
    assert!((1024..1200).contains(&cached), "{cached} cached: {err}");
    let (mut command, fresh) = cluster("fresh", &["--no-cache"]);
    let run = command.output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let (resumed, fresh) = (
        std::fs::read(resumed).unwrap(),
        std::fs::read(fresh).unwrap(),
    );
    assert!(
        resumed == fresh,
        "the resumed run's claims and vectors differ"
    );
}
