//! `stancemap stance` and the stance fields of the report, with the real model.

mod common;

use common::{stancemap, stderr};

#[test]
fn clear_claims_get_their_stance_in_both_languages() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("claims.txt");
    std::fs::write(
        &input,
        "China controls almost all of the world's capacity to refine heavy rare earths.\n\
         A new magnet plant in Ohio will cut American reliance on Chinese rare earths.\n\
         印度与日本签署协议，联合开发稀土资源以减少对中国的依赖。\n\
         中国的稀土分离技术遥遥领先，其他国家难以追赶。\n",
    )
    .unwrap();
    let out = stancemap(&["stance", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labels: Vec<&str> = rows.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["supports", "challenges", "challenges", "supports"]);
    for r in &rows {
        let p = &r["probabilities"];
        let sum: f64 = ["supports", "challenges", "neutral"]
            .iter()
            .map(|k| p[k].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "{r}");
        assert_eq!(r["score"], p[r["label"].as_str().unwrap()]);
    }
}

#[test]
fn a_bad_frame_names_its_line_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let frame = dir.path().join("frame.toml");
    std::fs::write(
        &frame,
        "name = \"x\"\ndescription = \"y\"\n[examples]\nsupports = [\"a\", \"b\"]\nchallenges = [\"c\"]\nneutral = [\"d\", \"e\"]\n",
    )
    .unwrap();
    let out = stancemap(&[
        "cluster",
        "seeds/",
        "--target",
        frame.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("frame.toml:5: `challenges` has 1 examples"),
        "{err}"
    );
    assert!(
        !err.contains("claims"),
        "frame checked after reading: {err}"
    );
}
