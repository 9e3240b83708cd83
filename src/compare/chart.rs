//! An SVG bar chart of a comparison: tokens/s by engine, grouped by concurrency.

use std::fmt::Write as _;

use super::CompareReport;
use crate::report::escape;

const COLOURS: [&str; 8] = [
    "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The chart as a standalone SVG document.
pub fn svg(report: &CompareReport) -> String {
    let mut engines: Vec<&str> = Vec::new();
    let mut levels: Vec<usize> = Vec::new();
    for r in &report.runs {
        if !engines.contains(&r.engine.as_str()) {
            engines.push(&r.engine);
        }
        if !levels.contains(&r.concurrency) {
            levels.push(r.concurrency);
        }
    }
    let max = report
        .runs
        .iter()
        .map(|r| r.tokens_per_s)
        .fold(1.0, f64::max);
    let (left, top, plot_h, bar_w, gap) = (70.0, 50.0, 300.0, 26.0, 30.0);
    let group_w = bar_w * engines.len() as f64 + gap;
    let width = (left + group_w * levels.len() as f64 + 160.0).max(640.0);
    let height = top + plot_h + 60.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{left}\" y=\"20\" font-size=\"15\">Embedding throughput, tokens/s (higher is better)</text>\
<text x=\"{left}\" y=\"38\" fill=\"#555\">{} · {} passages, {} texts per request</text>",
        escape(&report.cpu.to_string()),
        report.passages,
        report.batch_size
    );
    for tick in 0..=4 {
        let value = max * tick as f64 / 4.0;
        let y = top + plot_h - plot_h * tick as f64 / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{value:.0}</text>",
            width - 150.0,
            left - 6.0,
            y + 4.0
        );
    }
    for (g, level) in levels.iter().enumerate() {
        let x0 = left + gap / 2.0 + group_w * g as f64;
        for (e, engine) in engines.iter().enumerate() {
            let Some(run) = report
                .runs
                .iter()
                .find(|r| r.concurrency == *level && r.engine == *engine)
            else {
                continue;
            };
            let h = plot_h * run.tokens_per_s / max;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} at concurrency {}: {:.0} tokens/s</title></rect>",
                x0 + bar_w * e as f64,
                top + plot_h - h,
                bar_w - 3.0,
                COLOURS[e % COLOURS.len()],
                escape(engine),
                level,
                run.tokens_per_s
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">concurrency {level}</text>",
            x0 + bar_w * engines.len() as f64 / 2.0,
            top + plot_h + 20.0
        );
    }
    for (e, engine) in engines.iter().enumerate() {
        let y = top + 16.0 * e as f64;
        let x = width - 140.0;
        let _ = write!(
            svg,
            "<rect x=\"{x:.0}\" y=\"{y:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{:.0}\">{}</text>",
            COLOURS[e % COLOURS.len()],
            x + 18.0,
            y + 10.0,
            escape(engine)
        );
    }
    svg.push_str("</svg>\n");
    svg
}
