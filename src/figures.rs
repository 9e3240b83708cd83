//! Numbers and percentages a claim names besides money (`48,000 tons`, `12种`,
//! `90%`, `70 percent`), each in one form, so that a group can show the figures
//! its members share. Money has its own notations and form ([`crate::money`]);
//! the digits inside an amount are not counted again here. A lone digit (`2
//! tons`, `3月`) says too little to count as a shared figure and is left out.

use std::sync::LazyLock;

use regex::Regex;

use crate::money;

/// A number as money writes it, then an optional percent sign or word.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i){}(\s?%|\s?per\s?cent\b)?", money::NUMBER)).expect("valid pattern")
});

/// A number as the claim writes it, and its one form: digits without
/// separators, `%` after a percentage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    pub written: String,
    pub form: String,
}

/// The figures `text` names outside its money amounts, in the order written.
pub fn figures(text: &str) -> Vec<Figure> {
    let money = money::spans(text);
    NUMBER
        .captures_iter(text)
        .filter_map(|c| {
            let whole = c.get(0)?;
            if money
                .iter()
                .any(|m| m.start < whole.end() && whole.start() < m.end)
            {
                return None;
            }
            let digits = c[1].replace(',', "");
            let fraction = c
                .get(2)
                .map_or(String::new(), |m| format!(".{}", m.as_str()));
            let percent = c.get(3).is_some();
            if digits.len() < 2 && fraction.is_empty() && !percent {
                return None;
            }
            let form = format!("{digits}{fraction}{}", if percent { "%" } else { "" });
            Some(Figure {
                written: whole.as_str().trim().to_string(),
                form,
            })
        })
        .collect()
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
            forms("2025年10月9日,新增五种,总计12种,占比90%。"),
            ["2025", "10", "12", "90%"]
        );
        let f = &figures("about 48,000 tons")[0];
        assert_eq!((f.written.as_str(), f.form.as_str()), ("48,000", "48000"));
    }

    #[test]
    fn money_and_lone_digits_are_not_figures() {
        assert!(forms("The U.S. is providing $500 million and 5亿美元 over 2 years.").is_empty());
        assert_eq!(forms("a $2.5bn deal for 2 mines in 12 months"), ["12"]);
    }
}
