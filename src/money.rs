//! Money amounts named in a claim, in English or Chinese notation, reduced to one
//! form so that `$500 million`, `US$0.5 billion` and `5亿美元` compare equal. The
//! encoder sees the same figure in two notations as different tokens, so across
//! languages a shared amount is a signal of its own (see [`crate::align`]).

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A currency, as far as notation tells it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Currency {
    Dollar,
    Yuan,
    Euro,
    Pound,
    Yen,
    Rupee,
}

/// An amount of money: `digits × 10^exponent` with no trailing zeros in `digits`,
/// so each value has exactly one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money {
    pub currency: Currency,
    pub digits: u64,
    pub exponent: i32,
}

impl std::fmt::Display for Money {
    /// `$500 million`, `¥1.2 billion`, `€300`: one notation whatever the source's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let symbol = match self.currency {
            Currency::Dollar => "$",
            Currency::Yuan => "¥",
            Currency::Euro => "€",
            Currency::Pound => "£",
            Currency::Yen => "JP¥",
            Currency::Rupee => "Rs ",
        };
        let value = self.digits as f64 * 10f64.powi(self.exponent);
        let (scaled, unit) = [(1e12, " trillion"), (1e9, " billion"), (1e6, " million")]
            .into_iter()
            .find(|&(size, _)| value >= size)
            .map_or((value, ""), |(size, unit)| (value / size, unit));
        let number = format!("{scaled:.3}");
        let number = number.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{symbol}{number}{unit}")
    }
}

/// A number: digits with optional thousands separators and decimals (captured:
/// the whole part, then the fraction's digits).
pub const NUMBER: &str = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?";

/// `$500 million`, `US$2.5bn`, `€1 trillion`, `Rs. 300`.
static SYMBOL_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(US\$|\$|€|£|\bUSD|\bEUR|\bGBP|\bRMB|\bCNY|\bRs\.?|\bPKR|\bINR)\s?{NUMBER}(?:\s?(thousand|million|billion|trillion|bn|mn|m|k)\b)?"
    ))
    .expect("valid pattern")
});

/// `500 million dollars`, `3 billion yuan`.
static WORD_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b{NUMBER}\s?(thousand|million|billion|trillion)?\s(dollars?|USD|euros?|pounds|yuan|RMB|rupees|yen)\b"
    ))
    .expect("valid pattern")
});

/// `5亿美元`, `4.39亿美元`, `2381万欧元`, `100亿元`.
static CHINESE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{NUMBER}\s?(万亿|千亿|百亿|亿|千万|百万|万|千)?\s?(美元|美金|欧元|英镑|日元|人民币|元|卢比)"
    ))
    .expect("valid pattern")
});

fn currency(word: &str) -> Currency {
    match word.to_lowercase().trim_end_matches('.') {
        "$" | "us$" | "usd" | "dollar" | "dollars" | "美元" | "美金" => Currency::Dollar,
        "€" | "eur" | "euro" | "euros" | "欧元" => Currency::Euro,
        "£" | "gbp" | "pounds" | "英镑" => Currency::Pound,
        "yen" | "日元" => Currency::Yen,
        "rs" | "pkr" | "inr" | "rupees" | "卢比" => Currency::Rupee,
        _ => Currency::Yuan,
    }
}

/// The power of ten a magnitude word stands for.
fn magnitude(word: &str) -> i32 {
    match word.to_lowercase().as_str() {
        "k" | "thousand" | "千" => 3,
        "万" => 4,
        "m" | "mn" | "million" | "百万" => 6,
        "千万" => 7,
        "亿" => 8,
        "bn" | "billion" => 9,
        "百亿" => 10,
        "千亿" => 11,
        "trillion" | "万亿" => 12,
        _ => 0,
    }
}

/// `whole.fraction × 10^power` in its one form; `None` past 19 digits.
fn normalise(currency: Currency, whole: &str, fraction: &str, power: i32) -> Option<Money> {
    let all: String = whole
        .chars()
        .filter(|c| *c != ',')
        .chain(fraction.chars())
        .collect();
    let mut digits: u64 = all.parse().ok()?;
    let mut exponent = power - fraction.len() as i32;
    if digits == 0 {
        return None;
    }
    while digits.is_multiple_of(10) {
        digits /= 10;
        exponent += 1;
    }
    Some(Money {
        currency,
        digits,
        exponent,
    })
}

/// Capture group `i` of `c`, or "" when it did not take part.
fn group<'t>(c: &regex::Captures<'t>, i: usize) -> &'t str {
    c.get(i).map_or("", |m| m.as_str())
}

/// Every amount of money `text` names, sorted, each once.
pub fn amounts(text: &str) -> Vec<Money> {
    let mut found: Vec<Money> = named(text).filter_map(|(_, m)| m).collect();
    found.sort();
    found.dedup();
    found
}

/// Where `text` names money (byte ranges, in no particular order), whether or
/// not the amount has one form.
pub fn spans(text: &str) -> Vec<Range<usize>> {
    named(text).map(|(span, _)| span).collect()
}

/// Each notation's matches in `text`: where, and the amount in its one form.
fn named(text: &str) -> impl Iterator<Item = (Range<usize>, Option<Money>)> + '_ {
    // Each notation with its capture groups: currency, whole part, fraction, magnitude.
    let notations: [(&Regex, [usize; 4]); 3] = [
        (&*SYMBOL_FIRST, [1, 2, 3, 4]),
        (&*WORD_AFTER, [4, 1, 2, 3]),
        (&*CHINESE, [4, 1, 2, 3]),
    ];
    notations
        .into_iter()
        .flat_map(move |(pattern, [cur, whole, fraction, mag])| {
            pattern.captures_iter(text).map(move |c| {
                let amount = normalise(
                    currency(group(&c, cur)),
                    group(&c, whole),
                    group(&c, fraction),
                    magnitude(group(&c, mag)),
                );
                (c.get(0).expect("the whole match").range(), amount)
            })
        })
}

/// Whether two sorted amount lists share an amount.
pub fn share_an_amount(a: &[Money], b: &[Money]) -> bool {
    a.iter().any(|m| b.binary_search(m).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_in_one_notation() {
        let shown = |t: &str| amounts(t).iter().map(Money::to_string).collect::<Vec<_>>();
        assert_eq!(shown("a $500 million deal"), ["$500 million"]);
        assert_eq!(shown("价值5亿美元的备忘录"), ["$500 million"]);
        assert_eq!(shown("US$2.5bn"), ["$2.5 billion"]);
    }

    fn dollars(digits: u64, exponent: i32) -> Money {
        Money {
            currency: Currency::Dollar,
            digits,
            exponent,
        }
    }

    #[test]
    fn one_amount_in_every_notation() {
        for text in [
            "The U.S. is providing $500 million in investment",
            "签署价值5亿美元的谅解备忘录",
            "a US$0.5 billion memorandum",
            "worth 500 million dollars",
            "an investment of USD 500,000,000",
            "5 亿美元",
        ] {
            assert_eq!(amounts(text), vec![dollars(5, 8)], "{text}");
        }
    }

    #[test]
    fn decimals_separators_and_currencies() {
        assert_eq!(amounts("4.39亿美元"), vec![dollars(439, 6)]);
        assert_eq!(amounts("$439 million"), vec![dollars(439, 6)]);
        assert_eq!(amounts("39.5万美元"), amounts("$395,000 a year"));
        assert_eq!(amounts("$53m of jewels"), amounts("5300万美元的珠宝"));
        assert_eq!(amounts("2381万欧元")[0].currency, Currency::Euro);
        assert_eq!(amounts("100亿元")[0].currency, Currency::Yuan);
        assert_ne!(amounts("100亿元"), amounts("$10 billion"));
        assert_eq!(
            amounts("from $610.6 million to $616.5 million"),
            vec![dollars(6106, 5), dollars(6165, 5)]
        );
    }

    #[test]
    fn numbers_without_currency_are_not_money() {
        for text in [
            "70% of global supply",
            "长期以来进口占比高达七成以上",
            "2 吨稀土",
            "in 2025",
            "$0",
        ] {
            assert!(amounts(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn shared_amounts() {
        let en = amounts("$500 million and $2 billion");
        assert!(share_an_amount(&en, &amounts("5亿美元")));
        assert!(!share_an_amount(&en, &amounts("4.39亿美元")));
        assert!(!share_an_amount(&en, &[]));
    }
}
