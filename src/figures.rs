//! Numbers, percentages and dates a claim names besides money (`48,000 tons`,
//! `12种`, `90%`, `70 percent`, `October 9` = `10月9日`), each in one form, so that a
//! group can show the figures its members share. Money has its own notations and
//! form ([`crate::money`]); the digits inside an amount or a date are not counted
//! again as numbers. A lone digit (`2 tons`, `3月`) says too little to count as a
//! shared figure and is left out.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::money;

/// A number as money writes it, then an optional percent sign or word.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i){}(\s?%|\s?per\s?cent\b)?", money::NUMBER)).expect("valid pattern")
});

/// English month names, full names before their abbreviations.
const MONTH: &str = r"(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?";

/// `2025年10月9日`, `10月9日`, `10月9号`: year (optional), month, day.
static CHINESE_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:(\d{4})\s?年\s?)?(\d{1,2})\s?月\s?(\d{1,2})\s?[日号]").expect("valid pattern")
});

/// `October 9`, `Oct. 9th, 2025`: month, day.
static MONTH_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b{MONTH}\s(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s\d{{4}})?"
    ))
    .expect("valid pattern")
});

/// `9 October`, `9th Oct 2025`: day, month.
static DAY_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?{MONTH}(?:,?\s\d{{4}})?"
    ))
    .expect("valid pattern")
});

/// A figure as the claim writes it, and its one form: digits without separators
/// (`%` after a percentage), or `MM-DD` for a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub written: String,
    pub form: String,
}

/// The figures `text` names outside its money amounts, in the order written.
pub fn figures(text: &str) -> Vec<Figure> {
    let mut found = dates(text);
    let mut taken = money::spans(text);
    taken.extend(found.iter().map(|(span, _)| span.clone()));
    found.extend(
        NUMBER
            .captures_iter(text)
            .filter(|c| !overlaps(&taken, &c.get(0).expect("the whole match").range()))
            .filter_map(|c| number(&c)),
    );
    found.sort_by_key(|(span, _)| span.start);
    found.into_iter().map(|(_, figure)| figure).collect()
}

/// Whether `span` overlaps any of `spans`.
fn overlaps<'s>(spans: impl IntoIterator<Item = &'s Range<usize>>, span: &Range<usize>) -> bool {
    spans
        .into_iter()
        .any(|s| s.start < span.end && span.start < s.end)
}

/// A matched number in its one form, unless it is a lone digit.
fn number(c: &regex::Captures) -> Option<(Range<usize>, Figure)> {
    let whole = c.get(0)?;
    let digits = c[1].replace(',', "");
    let fraction = c
        .get(2)
        .map_or(String::new(), |m| format!(".{}", m.as_str()));
    let percent = c.get(3).is_some();
    if digits.len() < 2 && fraction.is_empty() && !percent {
        return None;
    }
    let form = format!("{digits}{fraction}{}", if percent { "%" } else { "" });
    let written = whole.as_str().trim().to_string();
    Some((whole.range(), Figure { written, form }))
}

/// Every date `text` names (a month and a day; the year, when written, is part
/// of what is written but not of the form), each span once.
fn dates(text: &str) -> Vec<(Range<usize>, Figure)> {
    // Each notation with the capture groups of its month and day.
    let notations: [(&Regex, usize, usize); 3] = [
        (&CHINESE_DATE, 2, 3),
        (&MONTH_FIRST, 1, 2),
        (&DAY_FIRST, 2, 1),
    ];
    let mut found: Vec<(Range<usize>, Figure)> = Vec::new();
    for (pattern, month, day) in notations {
        for c in pattern.captures_iter(text) {
            let whole = c.get(0).expect("the whole match");
            let (Some(month), Ok(day)) = (month_number(&c[month]), c[day].parse::<u32>()) else {
                continue;
            };
            if (1..=31).contains(&day) && !overlaps(found.iter().map(|(s, _)| s), &whole.range()) {
                let written = whole.as_str().trim().to_string();
                let form = format!("{month:02}-{day:02}");
                found.push((whole.range(), Figure { written, form }));
            }
        }
    }
    found
}

/// A month's number (1–12) from its digits or its English name.
fn month_number(month: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let named = NAMES
        .iter()
        .position(|n| month.to_lowercase().starts_with(n))
        .map(|i| i as u32 + 1);
    named
        .or_else(|| month.parse().ok())
        .filter(|m| (1..=12).contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(text: &str) -> Vec<String> {
        figures(text).into_iter().map(|f| f.form).collect()
    }

    #[test]
    fn numbers_and_percentages_in_one_form_in_both_languages() {
        assert_eq!(
            forms("In 2022, China exported 48,000 tons, 70 percent of 68.5 thousand."),
            ["2022", "48000", "70%", "68.5"]
        );
        assert_eq!(
            forms("2025年,新增五种,总计12种,占比90%。"),
            ["2025", "12", "90%"]
        );
        let f = &figures("about 48,000 tons")[0];
        assert_eq!((f.written.as_str(), f.form.as_str()), ("48,000", "48000"));
    }

    #[test]
    fn a_date_has_one_form_in_both_languages() {
        let f = figures("2025年10月9日,中国商务部公告扩展稀土管制");
        assert_eq!(
            (f[0].written.as_str(), f[0].form.as_str()),
            ("2025年10月9日", "10-09")
        );
        assert_eq!(
            f.len(),
            1,
            "the year and month are not numbers again: {f:?}"
        );
        assert_eq!(
            forms("On October 9, 2025, China widened its controls."),
            ["10-09"]
        );
        assert_eq!(
            forms("by 9th Oct, and on Sept. 30 again"),
            ["10-09", "09-30"]
        );
        assert_eq!(forms("13月40日 and May 45"), ["13", "40", "45"]);
    }

    #[test]
    fn money_and_lone_digits_are_not_figures() {
        assert!(forms("The U.S. is providing $500 million and 5亿美元 over 2 years.").is_empty());
        assert_eq!(forms("a $2.5bn deal for 2 mines in 12 months"), ["12"]);
    }
}
