//! The OpenAI embeddings API: request parsing with precise errors, and the
//! response and error bodies existing clients expect.

use base64::Engine as _;
use ndarray::Array2;
use serde::Serialize;
use serde_json::{json, Value};

use crate::embed::Role;

/// A checked `POST /v1/embeddings` request.
#[derive(Debug, PartialEq)]
pub struct EmbeddingRequest {
    pub inputs: Vec<String>,
    pub base64: bool,
    /// `input_type: "query"` (an extension) embeds with the e5 query prefix.
    pub role: Role,
    /// The width asked for, if any (see [`check_dimensions`]).
    pub dimensions: Option<u64>,
}

/// Why a request was refused: its HTTP status and message.
#[derive(Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<&'static str>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>, param: &'static str) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param),
        }
    }

    /// The OpenAI-shaped error body.
    pub fn body(&self) -> Value {
        let kind = match self.status {
            429 | 503 => "server_overloaded",
            500.. => "server_error",
            _ => "invalid_request_error",
        };
        json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": null}})
    }
}

/// Parses and checks a request body; at most `max_inputs` texts.
pub fn parse_request(body: &[u8], max_inputs: usize) -> Result<EmbeddingRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"), "body"))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object",
            "body",
        ));
    };
    let inputs = match fields.get("input") {
        None => return Err(ApiError::bad_request("`input` is required", "input")),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(ApiError::bad_request(
                    format!("`input[{i}]` must be a string (token arrays are not supported)"),
                    "input",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`input` must be a string or an array of strings",
                "input",
            ))
        }
    };
    if inputs.is_empty() {
        return Err(ApiError::bad_request("`input` is empty", "input"));
    }
    if let Some(i) = inputs.iter().position(|s| s.trim().is_empty()) {
        return Err(ApiError::bad_request(
            format!("`input[{i}]` is an empty string"),
            "input",
        ));
    }
    if inputs.len() > max_inputs {
        return Err(ApiError {
            status: 413,
            message: format!(
                "{} inputs in one request; the limit is {max_inputs}",
                inputs.len()
            ),
            param: Some("input"),
        });
    }
    let base64 = match fields.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`encoding_format` must be \"float\" or \"base64\"",
                "encoding_format",
            ))
        }
    };
    let role = match fields.get("input_type") {
        None | Some(Value::Null) => Role::Passage,
        Some(Value::String(t)) if t == "passage" || t == "document" => Role::Passage,
        Some(Value::String(t)) if t == "query" => Role::Query,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`input_type` must be \"query\" or \"passage\"",
                "input_type",
            ))
        }
    };
    let dimensions = match fields.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d > 0) => n.as_u64(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`dimensions` must be a positive integer",
                "dimensions",
            ))
        }
    };
    Ok(EmbeddingRequest {
        inputs,
        base64,
        role,
        dimensions,
    })
}

/// Refuses a `dimensions` other than the model's width: the vectors are not
/// truncated (e5 was not trained for it), so another width would be a wrong answer.
pub fn check_dimensions(request: &EmbeddingRequest, dim: usize) -> Result<(), ApiError> {
    match request.dimensions {
        Some(d) if d != dim as u64 => Err(ApiError::bad_request(
            format!(
                "`dimensions` {d} is not supported: this model gives {dim}; omit it or send {dim}"
            ),
            "dimensions",
        )),
        _ => Ok(()),
    }
}

/// Refuses an input of more than `max_input` tokens, or a request of more than
/// `max_request` (413, naming the count): long texts are embedded window by
/// window, and one huge input would hold the encoder for minutes. Returns the
/// request's tokens.
pub fn check_tokens(
    ids: &[Vec<u32>],
    max_input: usize,
    max_request: usize,
) -> Result<usize, ApiError> {
    let too_large = |message: String| ApiError {
        status: 413,
        message,
        param: Some("input"),
    };
    if let Some((i, seq)) = ids.iter().enumerate().find(|(_, s)| s.len() > max_input) {
        return Err(too_large(format!(
            "`input[{i}]` has {} tokens; the limit is {max_input} per input",
            seq.len()
        )));
    }
    let total: usize = ids.iter().map(Vec::len).sum();
    if total > max_request {
        return Err(too_large(format!(
            "the request has {total} tokens; the limit is {max_request} per request"
        )));
    }
    Ok(total)
}

/// The response body of `POST /v1/embeddings`.
#[derive(Debug, Serialize)]
pub struct EmbeddingResponse {
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: String,
    usage: Usage,
}

impl EmbeddingResponse {
    /// The tokens the request's inputs took.
    pub fn prompt_tokens(&self) -> usize {
        self.usage.prompt_tokens
    }
}

#[derive(Debug, Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

/// Floats (serialised as f32, shortest form) or base64 of little-endian f32 bytes.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Embedding {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// The response: one `data` item per input, in order.
pub fn response(model: &str, rows: &Array2<f32>, base64: bool, tokens: usize) -> EmbeddingResponse {
    let data = rows
        .rows()
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Float(row.to_vec())
            };
            EmbeddingItem {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    EmbeddingResponse {
        object: "list",
        data,
        model: model.to_string(),
        usage: Usage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(body: &str) -> u16 {
        parse_request(body.as_bytes(), 2).unwrap_err().status
    }

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        let r = parse_request(
            br#"{"input":["a","b"],"model":"m","encoding_format":"base64"}"#,
            2,
        )
        .unwrap();
        assert_eq!(r.inputs, ["a", "b"]);
        assert!(r.base64);
        let q = parse_request(br#"{"input":"a","input_type":"query"}"#, 2).unwrap();
        assert_eq!((q.inputs.len(), q.role), (1, Role::Query));
        assert_eq!(status("{"), 400);
        assert_eq!(status("[1]"), 400);
        assert_eq!(status(r#"{"model":"m"}"#), 400);
        assert_eq!(status(r#"{"input":[]}"#), 400);
        assert_eq!(status(r#"{"input":""}"#), 400);
        assert_eq!(status(r#"{"input":["a",3]}"#), 400);
        assert_eq!(status(r#"{"input":[[1,2]]}"#), 400);
        assert_eq!(status(r#"{"input":"a","encoding_format":"int8"}"#), 400);
        assert_eq!(status(r#"{"input":["a","b","c"]}"#), 413);
        let e = parse_request(br#"{"input":["a",3]}"#, 2).unwrap_err();
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
        assert!(e.message.contains("input[1]"));
    }

    #[test]
    fn a_width_the_model_does_not_give_is_refused() {
        let asked = |body: &str| parse_request(body.as_bytes(), 2).unwrap();
        assert!(check_dimensions(&asked(r#"{"input":"a"}"#), 384).is_ok());
        assert!(check_dimensions(&asked(r#"{"input":"a","dimensions":384}"#), 384).is_ok());
        let e = check_dimensions(&asked(r#"{"input":"a","dimensions":64}"#), 384).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("gives 384"), "{}", e.message);
        assert_eq!(status(r#"{"input":"a","dimensions":-3}"#), 400);
    }

    #[test]
    fn too_many_tokens_are_refused_with_the_count() {
        let ids = vec![vec![0u32; 10], vec![0u32; 30]];
        assert!(check_tokens(&ids, 30, 40).is_ok());
        let e = check_tokens(&ids, 20, 100).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(
            e.message.contains("`input[1]` has 30 tokens"),
            "{}",
            e.message
        );
        let e = check_tokens(&ids, 30, 39).unwrap_err();
        assert!(e.message.contains("has 40 tokens"), "{}", e.message);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let rows = ndarray::array![[1.0f32, -2.0]];
        let body = serde_json::to_value(response("m", &rows, true, 3)).unwrap();
        let text = body["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
        assert_eq!(body["usage"]["prompt_tokens"], 3);
        let floats = serde_json::to_string(&response("m", &rows, false, 3)).unwrap();
        assert!(floats.contains(r#""embedding":[1.0,-2.0]"#), "{floats}");
    }
}
