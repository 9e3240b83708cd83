//! Target frames: a TOML file with a name, a one-line description of the position
//! and labelled example claims, in any language.
//!
//! ```toml
//! name = "china-rare-earth"
//! description = "China's rare-earth position: ..."
//!
//! [examples]
//! supports = ["China refines most of the world's rare earths.", "..."]
//! challenges = ["..."]
//! neutral = ["..."]
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::Label;

/// The fewest examples a label may have in a frame file.
pub const MIN_EXAMPLES: usize = 2;

/// A target position with labelled examples.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub name: String,
    pub description: String,
    /// Example claims and their labels.
    pub examples: Vec<(Label, String)>,
}

/// Why a frame file cannot be used; the message names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameFile {
    name: Spanned<String>,
    description: Spanned<String>,
    examples: Spanned<ExampleLists>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleLists {
    supports: Spanned<Vec<Spanned<String>>>,
    challenges: Spanned<Vec<Spanned<String>>>,
    neutral: Spanned<Vec<Spanned<String>>>,
}

impl Frame {
    /// Reads and checks a frame file.
    pub fn load(path: &Path) -> Result<Frame, FrameError> {
        let text = std::fs::read_to_string(path).map_err(|source| FrameError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Frame::parse(&text, &path.display().to_string())
    }

    /// Parses and checks frame text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Frame, FrameError> {
        let invalid = |span: Range<usize>, message: String| FrameError::Invalid {
            path: origin.to_string(),
            line: line_of(text, span.start),
            message,
        };
        let file: FrameFile = toml::from_str(text).map_err(|e| {
            let message = e.message().to_string();
            invalid(e.span().unwrap_or(0..0), message)
        })?;
        for field in [&file.name, &file.description] {
            if field.get_ref().trim().is_empty() {
                return Err(invalid(field.span(), "must not be empty".into()));
            }
        }
        let lists = file.examples.get_ref();
        let mut examples = Vec::new();
        let mut seen: HashMap<String, Label> = HashMap::new();
        for (label, list) in [
            (Label::Supports, &lists.supports),
            (Label::Challenges, &lists.challenges),
            (Label::Neutral, &lists.neutral),
        ] {
            if list.get_ref().len() < MIN_EXAMPLES {
                return Err(invalid(
                    list.span(),
                    format!(
                        "`{label}` has {} examples; a frame needs at least {MIN_EXAMPLES} per label",
                        list.get_ref().len()
                    ),
                ));
            }
            for example in list.get_ref() {
                let text = example.get_ref().trim();
                if text.is_empty() {
                    return Err(invalid(example.span(), format!("empty `{label}` example")));
                }
                if let Some(other) = seen.insert(text.to_string(), label) {
                    return Err(invalid(
                        example.span(),
                        format!("this example is listed under both `{other}` and `{label}`"),
                    ));
                }
                examples.push((label, text.to_string()));
            }
        }
        Ok(Frame {
            name: file.name.into_inner(),
            description: file.description.into_inner(),
            examples,
        })
    }

    /// The examples' texts, in the order of [`examples`](Self::examples).
    pub fn example_texts(&self) -> Vec<&str> {
        self.examples.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// How many examples each label has, in [`Label::ALL`] order.
    pub fn counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        for (label, _) in &self.examples {
            counts[label.index()] += 1;
        }
        counts
    }
}

/// The 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "t"
description = "a position"

[examples]
supports = ["s1", "s2"]
challenges = ["c1", "c2"]
neutral = ["n1", "n2"]
"#;

    fn error(text: &str) -> String {
        Frame::parse(text, "f.toml").unwrap_err().to_string()
    }

    #[test]
    fn parses_a_frame() {
        let frame = Frame::parse(GOOD, "f.toml").unwrap();
        assert_eq!(frame.name, "t");
        assert_eq!(frame.counts(), [2, 2, 2]);
        assert_eq!(frame.examples[2], (Label::Challenges, "c1".to_string()));
    }

    #[test]
    fn errors_name_the_line() {
        let short = GOOD.replace(r#"["c1", "c2"]"#, r#"["c1"]"#);
        assert!(error(&short).starts_with("f.toml:6: `challenges` has 1 examples"));
        let empty = GOOD.replace(r#""n2""#, r#""  ""#);
        assert_eq!(error(&empty), "f.toml:7: empty `neutral` example");
        let twice = GOOD.replace(r#""n2""#, r#""s1""#);
        assert!(error(&twice).contains("f.toml:7: this example is listed under both"));
        let unknown = GOOD.replace("neutral =", "neutrl =");
        assert!(error(&unknown).starts_with("f.toml:7: unknown field `neutrl`"));
        let missing = GOOD.replace("description = \"a position\"\n", "");
        assert!(error(&missing).contains("missing field `description`"));
        let syntax = GOOD.replace("supports = [", "supports = ");
        assert!(error(&syntax).starts_with("f.toml:5:"));
    }
}
