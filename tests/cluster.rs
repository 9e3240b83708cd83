//! `stancemap cluster` and `dedup` end to end on the seed articles, with the real model.

use std::path::Path;
mod common;

use common::{stancemap, stderr};

#[test]
fn seeds_report_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let out = stancemap(&["cluster", "seeds/", "-o", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["version"], 8);
    assert_eq!(report["complete"], true, "the seeds are listed whole");
    assert_eq!(
        report["totals"]["claims"].as_u64(),
        report["claims"].as_array().map(|c| c.len() as u64)
    );
    assert_eq!(
        report["model"]["adapter"],
        "built-in models/adapter/e5-small-claims.safetensors"
    );
    assert!(
        report["model"]["pair_reader"].is_null(),
        "no reader by default"
    );
    assert_eq!(report["target"]["context"], "+ 1 × ±2 claims");
    assert_eq!(report["model"]["dim"], 384);
    let articles = report["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 5);
    for a in articles {
        for key in ["id", "path", "title", "date", "source", "lang"] {
            assert!(a.get(key).is_some(), "article lacks {key}");
        }
    }
    let claims = report["claims"].as_array().unwrap();
    assert!(claims.len() > 50, "{} claims", claims.len());
    // Spans point back into the source text.
    for c in claims {
        let path = format!("seeds/{}.txt", c["article"].as_str().unwrap());
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        let (start, end) = (
            c["start"].as_u64().unwrap() as usize,
            c["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            stancemap::corpus::segment::clean(&text[start..end]),
            c["text"].as_str().unwrap()
        );
    }
    let clusters = report["clusters"].as_array().unwrap();
    assert!(
        clusters
            .iter()
            .any(|c| c["articles"].as_array().unwrap().len() >= 2),
        "no cluster spans articles"
    );
    for c in clusters {
        let members = c["members"].as_array().unwrap();
        assert_eq!(members.len() as u64, c["size"].as_u64().unwrap());
        assert!(members.len() >= 2, "singleton cluster");
        for m in members {
            let claim = claims.iter().find(|x| x["id"] == *m).unwrap();
            assert_eq!(claim["cluster"], c["id"]);
        }
        assert!(!c["keywords"].as_array().unwrap().is_empty());
        // Every member's evidence: its fit, and a fellow member that ties it in.
        let evidence = c["evidence"].as_array().unwrap();
        assert_eq!(evidence.len(), members.len());
        let mut fits = 0.0;
        for (e, m) in evidence.iter().zip(members) {
            assert_eq!(e["claim"], *m);
            assert!(members.contains(&e["tied_to"]) && e["tied_to"] != *m, "{e}");
            let (fit, tie) = (e["fit"].as_f64().unwrap(), e["tie"].as_f64().unwrap());
            assert!(0.0 <= fit && fit <= tie + 1e-6 && tie <= 1.0 + 1e-6, "{e}");
            fits += fit;
        }
        let coherence = c["coherence"].as_f64().unwrap();
        assert!(
            (coherence - fits / members.len() as f64).abs() < 1e-5,
            "{c}"
        );
        assert!(c["shared_amounts"].is_array());
        // A shared figure is written so by a member, and its last digits (a
        // number's, separators aside, or a date's day) are in two members.
        let texts: Vec<String> = members
            .iter()
            .map(|m| claims.iter().find(|x| x["id"] == *m).unwrap())
            .map(|x| x["text"].as_str().unwrap().replace(',', ""))
            .collect();
        for figure in c["shared_numbers"].as_array().unwrap() {
            let figure = figure.as_str().unwrap().replace(',', "");
            assert!(texts.iter().any(|t| t.contains(&figure)), "{figure} in {c}");
            let digits = figure
                .rsplit(|ch: char| !ch.is_ascii_digit())
                .find(|d| !d.is_empty());
            let naming = texts.iter().filter(|t| t.contains(digits.unwrap())).count();
            assert!(naming >= 2, "{figure} in {c}");
        }
    }
    // No group's pairs average under the cut (0.5, a same-claim probability).
    for c in clusters {
        assert!(c["coherence"].as_f64().unwrap() >= 0.5 - 1e-6, "{c}");
    }
    assert_eq!(report["target"]["name"], "china-rare-earth");
    let labels = ["supports", "challenges", "neutral"];
    let sums_to_one = |p: &serde_json::Value| {
        let sum: f64 = labels.iter().map(|k| p[k].as_f64().unwrap()).sum();
        (sum - 1.0).abs() < 1e-4
    };
    for c in claims {
        let s = &c["stance"];
        assert!(labels.contains(&s["label"].as_str().unwrap()), "{s}");
        assert!(sums_to_one(&s["probabilities"]), "{s}");
        assert_eq!(s["score"], s["probabilities"][s["label"].as_str().unwrap()]);
    }
    for c in clusters {
        let s = &c["stance"];
        assert!(sums_to_one(&s["distribution"]), "{s}");
        assert_eq!(
            s["confidence"],
            s["distribution"][s["label"].as_str().unwrap()]
        );
        assert!(s["contested"].is_boolean());
    }
    // Every stance appears among the seeds' claims (they report a deal that
    // challenges the position and the reasons it still holds).
    for label in ["supports", "challenges"] {
        assert!(
            claims.iter().any(|c| c["stance"]["label"] == label),
            "no claim {label}"
        );
    }
    for d in report["duplicates"].as_array().unwrap() {
        let p = d["probability"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&p), "{d}");
        assert!(d["cosine"].as_f64().unwrap() <= 1.0 + 1e-6, "{d}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.matches("<circle").count() == claims.len());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Clusters") && md.contains("Stance: **"));
    // Which article states which point: a row per group, a column per article.
    let matrix: Vec<&str> = md
        .split("## Points by article")
        .nth(1)
        .and_then(|rest| rest.split("## Clusters").next())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| group"))
        .collect();
    assert_eq!(matrix.len(), clusters.len());
    for (row, c) in matrix.iter().zip(clusters) {
        let cells: Vec<&str> = row.trim_matches('|').split(" |").skip(1).collect();
        assert_eq!(cells.len(), articles.len(), "{row}");
        let marks: usize = cells.iter().map(|c| c.split_whitespace().count()).sum();
        assert_eq!(marks as u64, c["size"].as_u64().unwrap(), "{row}");
        let filled = cells.iter().filter(|c| !c.trim().is_empty()).count();
        assert_eq!(filled, c["articles"].as_array().unwrap().len(), "{row}");
    }
    assert!(html.contains("<h2>Points by article</h2>"));
    assert_eq!(
        html.matches("<text ").count(),
        clusters.len(),
        "a number per cluster on the map"
    );
}

/// Clusters of the seeds whose claims are in both languages: (with, without) the
/// language offset.
fn mixed_language_clusters(extra: &[&str]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["cluster", "seeds/", "-o", dir.path().to_str().unwrap()];
    args.extend(extra);
    let out = stancemap(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let claims = report["claims"].as_array().unwrap();
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let claim = claims.iter().find(|x| x["id"] == *m).unwrap();
                    format!("{} {}", claim["lang"], claim["text"])
                })
                .collect::<Vec<String>>()
        })
        .filter(|texts| {
            texts.iter().any(|t| t.starts_with("\"en\""))
                && texts.iter().any(|t| t.starts_with("\"zh\""))
        })
        .collect()
}

#[test]
fn the_language_offset_lets_chinese_and_english_claims_share_clusters() {
    // The English "Pakistan is facing a severe economic crisis … external debt" claims
    // group with the Chinese article's "巴基斯坦虽获短期资金,但长远风险高" only with
    // the offset, and without it far fewer groups hold both languages.
    let debt_group = |clusters: &[Vec<String>]| {
        clusters.iter().any(|c| {
            c.iter().any(|t| t.contains("external debt"))
                && c.iter().any(|t| t.contains("长远风险高"))
        })
    };
    let mixed = mixed_language_clusters(&[]);
    let unaligned = mixed_language_clusters(&["--no-align"]);
    assert!(debt_group(&mixed), "{mixed:#?}");
    assert!(!debt_group(&unaligned), "{unaligned:#?}");
    assert!(
        2 * unaligned.len() < mixed.len(),
        "{mixed:#?}\n{unaligned:#?}"
    );
}

/// `stancemap dedup seeds/ --cross-article-only` with `extra` options: its pairs.
fn cross_article_pairs(extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["dedup", "seeds/", "--cross-article-only"];
    args.extend(extra);
    let out = stancemap(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dedup_lists_cross_article_pairs() {
    let pairs = cross_article_pairs(&["--threshold", "0.7"]);
    assert!(!pairs.is_empty());
    for p in &pairs {
        assert_ne!(p["article_a"], p["article_b"]);
        assert!(p["probability"].as_f64().unwrap() >= 0.7);
    }
    // A higher threshold keeps fewer pairs, all of them among the first.
    let fewer = cross_article_pairs(&["--threshold", "0.9"]);
    assert!(
        fewer.len() < pairs.len(),
        "{} vs {}",
        fewer.len(),
        pairs.len()
    );
}

#[test]
fn the_same_amount_in_two_languages_is_a_duplicate() {
    // The English "$500 million" investment and the Chinese "5亿美元" memorandum.
    let same_deal = |pairs: &[serde_json::Value]| {
        pairs.iter().any(|p| {
            let (a, b) = (p["text_a"].as_str().unwrap(), p["text_b"].as_str().unwrap());
            let (en, zh) = if a.contains("5亿美元") {
                (b, a)
            } else {
                (a, b)
            };
            zh.contains("5亿美元") && en.contains("$500 million")
        })
    };
    // The deal's two claims share the sum in two notations but little wording;
    // the figures they share lift their same-claim probability.
    let probability = |pairs: &[serde_json::Value]| {
        pairs
            .iter()
            .find(|p| same_deal(std::slice::from_ref(p)))
            .map(|p| p["probability"].as_f64().unwrap())
            .expect("the deal's pair is listed")
    };
    let with_figures = probability(&cross_article_pairs(&["--threshold", "0.01"]));
    let dir = tempfile::tempdir().unwrap();
    let blind = dir.path().join("blind.json");
    let mut model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("models/same-claim/e5-small-claims.json").unwrap(),
    )
    .unwrap();
    let names: Vec<String> = serde_json::from_value(model["features"].clone()).unwrap();
    for (name, w) in names.iter().zip(model["weights"].as_array_mut().unwrap()) {
        if name.starts_with("figures") {
            *w = serde_json::json!(0.0);
        }
    }
    std::fs::write(&blind, model.to_string()).unwrap();
    let blind = blind.to_str().unwrap();
    let without = probability(&cross_article_pairs(&[
        "--threshold",
        "0.01",
        "--same-claim",
        blind,
    ]));
    assert!(with_figures > without, "{with_figures} vs {without}");
}

#[test]
fn bad_corpus_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = stancemap(&[
        "cluster",
        empty.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no articles found"),
        "{}",
        stderr(&out)
    );

    let binary = dir.path().join("x.txt");
    std::fs::write(
        &binary,
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01",
    )
    .unwrap();
    let out = stancemap(&["cluster", binary.to_str().unwrap()]);
    assert!(stderr(&out).contains("looks binary"), "{}", stderr(&out));

    // A 50 MB single-line file: refused quickly, not embedded for an hour.
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "稀土".repeat(50 << 20 >> 3)).unwrap();
    let out = stancemap(&["cluster", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("split it into smaller files"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
}

#[test]
fn a_rerun_takes_embeddings_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let run_on = |input: &str, out: &str, cache: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stancemap"))
            .args([
                "cluster",
                input,
                "-o",
                dir.path().join(out).to_str().unwrap(),
            ])
            .env("STANCEMAP_CACHE", dir.path().join(cache))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    // A wire copy is embedded once, and not counted as taken from the cache.
    let copies = dir.path().join("copies.jsonl");
    let copy = "The first shipment of rare-earth concentrate left the port of Pasni in October.";
    let rows = [
        format!(r#"{{"id":"a","text":"{copy} Washington welcomed the deal."}}"#),
        format!(r#"{{"id":"b","text":"{copy} Beijing said nothing about it."}}"#),
    ];
    std::fs::write(&copies, rows.join("\n")).unwrap();
    let copied = run_on(copies.to_str().unwrap(), "copies", "copies-cache");
    assert!(copied.status.success(), "{}", stderr(&copied));
    assert!(
        !stderr(&copied).contains("from the embedding cache"),
        "{}",
        stderr(&copied)
    );
    let run = |out: &str| run_on("seeds/", out, "cache");
    let first = run("a");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(!stderr(&first).contains("from the embedding cache"));
    let second = run("b");
    assert!(
        stderr(&second).contains("from the embedding cache"),
        "{}",
        stderr(&second)
    );
    let read = |d: &str| std::fs::read_to_string(dir.path().join(d).join("report.json")).unwrap();
    assert_eq!(read("a"), read("b"));
}

#[test]
fn dbscan_and_hdbscan_are_options() {
    let dir = tempfile::tempdir().unwrap();
    for algorithm in ["dbscan", "hdbscan"] {
        let out_dir = dir.path().join(algorithm);
        let out = stancemap(&[
            "cluster",
            "seeds/",
            "--algorithm",
            algorithm,
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{algorithm}: {}", stderr(&out));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
                .unwrap();
        let clusters = report["clusters"].as_array().unwrap();
        assert!(!clusters.is_empty(), "{algorithm} found no cluster");
        let sizes: Vec<u64> = clusters
            .iter()
            .map(|c| c["size"].as_u64().unwrap())
            .collect();
        assert!(sizes.iter().all(|&s| s >= 2), "{algorithm}: {sizes:?}");
        assert!(
            sizes.windows(2).all(|w| w[0] >= w[1]),
            "{algorithm}: {sizes:?}"
        );
    }
    let bad = stancemap(&[
        "cluster",
        "seeds/",
        "--algorithm",
        "dbscan",
        "--min-points",
        "1",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("min_points must be at least 2"),
        "{}",
        stderr(&bad)
    );
}

/// pyarrow from PyPI, installed once into target/ (as a user's Python would read
/// the tables); its folder for PYTHONPATH.
fn pyarrow() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyarrow");
    if !dir.join("pyarrow").exists() {
        let status = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&dir)
            .arg("pyarrow")
            .status()
            .expect("run pip");
        assert!(status.success(), "pip install pyarrow failed");
    }
    dir
}

#[test]
fn the_tables_read_in_pyarrow_as_the_report_says() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let out = stancemap(&["cluster", "seeds/", "-o", path, "--parquet-embeddings"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = std::process::Command::new("python3")
        .arg("tests/data/read_tables.py")
        .arg(path)
        .env("PYTHONPATH", pyarrow())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    let tables: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let count = |key: &str| report[key].as_array().unwrap().len();
    assert_eq!(tables["claims"]["rows"], count("claims"));
    assert_eq!(tables["groups"]["rows"], count("clusters"));
    assert_eq!(tables["pairs"]["rows"], count("duplicates"));
    let claims = &tables["claims"]["columns"];
    assert_eq!(claims["id"], "string");
    assert_eq!(claims["group"], "uint32");
    assert_eq!(
        claims["embedding"],
        "fixed_size_list<item: float not null>[384]"
    );
    assert_eq!(tables["groups"]["columns"]["members"], "list<item: string>");
    assert_eq!(tables["pairs"]["columns"]["probability"], "float");
    for norm in tables["claims"]["embedding_norms"].as_array().unwrap() {
        assert!((norm.as_f64().unwrap() - 1.0).abs() < 1e-3, "{norm}");
    }
    // Rows agree with report.json: the first claim, group and pair.
    let first = &tables["claims"]["values"][0];
    assert_eq!(first["id"], report["claims"][0]["id"]);
    assert_eq!(first["text"], report["claims"][0]["text"]);
    assert_eq!(first["stance"], report["claims"][0]["stance"]["label"]);
    let group = &tables["groups"]["values"][0];
    assert_eq!(group["members"], report["clusters"][0]["members"]);
    assert_eq!(group["size"], report["clusters"][0]["size"]);
    let figures: Vec<serde_json::Value> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let both = [&c["shared_amounts"], &c["shared_numbers"]];
            serde_json::Value::Array(
                both.iter()
                    .flat_map(|v| v.as_array().unwrap().clone())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        tables["groups"]["shared_figures"],
        serde_json::json!(figures)
    );
    let used: Vec<u64> = (0..count("clusters") as u64).collect();
    assert_eq!(tables["claims"]["groups_used"], serde_json::json!(used));
    let pair = &tables["pairs"]["values"][0];
    assert_eq!(pair["a"], report["duplicates"][0]["a"]);
}
