//! GraphQL over HTTP, as its specification (graphql.github.io/graphql-over-http) and the
//! spec's audit suite (`graphql-http`'s `serverAudits`) read it: which requests are taken,
//! which media type an answer has, and which status code.
//!
//! - A POST must say its body is `application/json` (a `charset` other than UTF-8 is
//!   refused too): anything else answers 415 and is never executed. A browser sends
//!   `text/plain`, forms and multipart across sites without a preflight, so taking them
//!   would let any web page run mutations with a visitor's cookies or network position.
//! - The request's parameters are checked as the spec types them (`query` a string,
//!   `operationName` a string or null, `variables` and `extensions` maps or null); a body or
//!   URL that is not such a request answers 400.
//! - The answer is `application/graphql-response+json` when the client accepts it, else
//!   `application/json` (also for `*/*`, a missing `Accept`, or nothing we can offer).
//!   Under `application/graphql-response+json`, a request that failed before execution
//!   (parse, validation, variable coercion, limits) answers 400 without `data`; under
//!   `application/json` it answers 200, as legacy clients expect.

use async_graphql::{BatchRequest, BatchResponse, Request, Response};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

/// The media type of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// `application/graphql-response+json`: the status code tells a request error.
    GraphqlResponseJson,
    /// `application/json`: the legacy type; request errors answer 200.
    Json,
}

impl ResponseType {
    /// The type to answer a request with these headers: the acceptable type with the
    /// highest quality, `application/graphql-response+json` on a tie.
    pub fn negotiate(headers: &HeaderMap) -> ResponseType {
        let Some(accept) = headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
        else {
            return ResponseType::Json;
        };
        let mut best: Option<(f32, u8, ResponseType)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // (preference on a tie, the type)
            let offered = match media.as_str() {
                "application/graphql-response+json" => (2, ResponseType::GraphqlResponseJson),
                "application/json" => (1, ResponseType::Json),
                "application/*" | "*/*" => (0, ResponseType::Json),
                _ => continue,
            };
            if quality <= 0.0 {
                continue;
            }
            if best.is_none_or(|(q, p, _)| (quality, offered.0) > (q, p)) {
                best = Some((quality, offered.0, offered.1));
            }
        }
        best.map_or(ResponseType::Json, |(_, _, ty)| ty)
    }

    /// The `Content-Type` of the answer.
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseType::GraphqlResponseJson => "application/graphql-response+json",
            ResponseType::Json => "application/json",
        }
    }

    /// The status code of an executed (or refused) GraphQL response.
    pub fn status(self, response: &BatchResponse) -> StatusCode {
        match (self, response) {
            (ResponseType::GraphqlResponseJson, BatchResponse::Single(r))
                if is_request_error(r) =>
            {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::OK,
        }
    }
}

/// Whether `response` answers a request that never began executing: errors, none of them
/// raised by a field (those carry a `path`), and no data. Such a response has no `data`
/// entry at all (GraphQL's "request error").
pub fn is_request_error(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// The JSON body of `response`: as async-graphql serializes it, but a request that never
/// executed has no `data` entry at all ([`is_request_error`]).
pub fn body(response: &BatchResponse) -> Vec<u8> {
    /// A response that never executed: its errors (and extensions) only.
    #[derive(serde::Serialize)]
    struct RequestError<'a> {
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
        errors: &'a [async_graphql::ServerError],
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Body<'a> {
        Executed(&'a Response),
        Refused(RequestError<'a>),
    }
    fn body(r: &Response) -> Body<'_> {
        if is_request_error(r) {
            Body::Refused(RequestError {
                extensions: &r.extensions,
                errors: &r.errors,
            })
        } else {
            Body::Executed(r)
        }
    }
    let written = match response {
        BatchResponse::Single(r) => serde_json::to_vec(&body(r)),
        BatchResponse::Batch(rs) => serde_json::to_vec(&rs.iter().map(body).collect::<Vec<_>>()),
    };
    written.expect("a GraphQL response serializes to JSON")
}

/// Whether a POST's `Content-Type` is JSON: `application/json`, any case, with no
/// `charset` but UTF-8.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
        && parts.all(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            !name.trim().eq_ignore_ascii_case("charset")
                || value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        })
}

/// A POST body as a GraphQL request (a JSON array: a batch), or what is wrong with it.
pub fn parse_body(body: &[u8]) -> Result<BatchRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("the body is empty: send a JSON object with a string `query`".into());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match value {
        Value::Array(items) if items.is_empty() => Err("an empty batch".into()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(fields) => request(fields),
                _ => Err("each operation of a batch must be a JSON object".into()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(BatchRequest::Batch),
        Value::Object(fields) => request(fields).map(BatchRequest::Single),
        _ => Err("the body must be a JSON object (or an array of them)".into()),
    }
}

/// The parameters of a GET request (`query`, `operationName`, and `variables` and
/// `extensions` as JSON text) as a GraphQL request, or what is wrong with them.
pub fn parse_query_string(params: Vec<(String, String)>) -> Result<Request, String> {
    let mut fields = Map::new();
    for (name, text) in params {
        let value = match name.as_str() {
            "query" | "operationName" => Value::String(text),
            "variables" | "extensions" => serde_json::from_str(&text)
                .map_err(|e| format!("`{name}` is not JSON text: {e}"))?,
            _ => continue,
        };
        if fields.insert(name.clone(), value).is_some() {
            return Err(format!("`{name}` is given twice"));
        }
    }
    request(fields)
}

/// A request from its parameters, checked as the spec types them.
fn request(mut fields: Map<String, Value>) -> Result<Request, String> {
    let persisted = matches!(
        fields.get("extensions"),
        Some(Value::Object(ext)) if ext.contains_key("persistedQuery")
    );
    match fields.get("query") {
        Some(Value::String(_)) => {}
        // Apollo's persisted queries send the hash alone.
        None | Some(Value::Null) if persisted => {
            fields.remove("query");
        }
        None => return Err("`query` is missing: send the GraphQL document as a string".into()),
        Some(_) => return Err("`query` must be a string".into()),
    }
    if !matches!(
        fields.get("operationName"),
        None | Some(Value::Null | Value::String(_))
    ) {
        return Err("`operationName` must be a string or null".into());
    }
    for name in ["variables", "extensions"] {
        match fields.get(name) {
            None | Some(Value::Object(_)) => {}
            Some(Value::Null) => {
                fields.remove(name);
            }
            Some(_) => return Err(format!("`{name}` must be a JSON object or null")),
        }
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| format!("not a GraphQL request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: Option<&str>) -> ResponseType {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        ResponseType::negotiate(&headers)
    }

    #[test]
    fn the_accepted_type_with_the_highest_quality_wins() {
        use ResponseType::{GraphqlResponseJson as Grj, Json};
        assert_eq!(accept(None), Json);
        assert_eq!(accept(Some("*/*")), Json);
        assert_eq!(accept(Some("application/json")), Json);
        assert_eq!(accept(Some("text/html")), Json);
        assert_eq!(accept(Some("application/graphql-response+json")), Grj);
        assert_eq!(
            accept(Some("application/graphql-response+json, application/json")),
            Grj
        );
        assert_eq!(
            accept(Some("application/json, application/graphql-response+json")),
            Grj,
            "a tie goes to the spec's type"
        );
        assert_eq!(
            accept(Some(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Json
        );
        assert_eq!(
            accept(Some("application/graphql-response+json;q=0, */*")),
            Json
        );
    }

    #[test]
    fn only_json_bodies_are_taken() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_json_content_type(&headers)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/json;charset=\"UTF-8\""));
        assert!(!with("application/json; charset=latin1"));
        assert!(!with("text/plain"));
        assert!(!with("text/plain; charset=utf-8"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!with("application/graphql"));
        assert!(!is_json_content_type(&HeaderMap::new()));
    }

    #[test]
    fn parameters_are_typed_as_the_spec_says() {
        let ok = |body: &str| parse_body(body.as_bytes()).is_ok();
        assert!(ok(r#"{"query":"{ a }"}"#));
        assert!(ok(
            r#"{"query":"{ a }","operationName":null,"variables":null,"extensions":null}"#
        ));
        assert!(ok(
            r#"{"query":"{ a }","variables":{"x":1},"extensions":{"e":1}}"#
        ));
        assert!(ok(r#"[{"query":"{ a }"},{"query":"{ b }"}]"#));
        assert!(ok(
            r#"{"extensions":{"persistedQuery":{"sha256Hash":"ab"}}}"#
        ));
        for bad in [
            "",
            "  ",
            "{ \"not JSON",
            "[]",
            "1",
            r#"{"notquery":"{ a }"}"#,
            r#"{"query":{"obj":"ect"}}"#,
            r#"{"query":0}"#,
            r#"{"query":false}"#,
            r#"{"query":["array"]}"#,
            r#"{"query":"{ a }","operationName":0}"#,
            r#"{"query":"{ a }","operationName":{}}"#,
            r#"{"query":"{ a }","variables":"string"}"#,
            r#"{"query":"{ a }","variables":["array"]}"#,
            r#"{"query":"{ a }","variables":false}"#,
            r#"{"query":"{ a }","extensions":0}"#,
            r#"{"query":"{ a }","extensions":"string"}"#,
            r#"[{"query":"{ a }"}, 1]"#,
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn get_parameters_carry_json_text() {
        let params = |pairs: &[(&str, &str)]| {
            parse_query_string(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let request = params(&[
            ("query", "query Q($n: String!) { a(n: $n) }"),
            ("variables", r#"{"n":"x"}"#),
            ("operationName", "Q"),
        ])
        .unwrap();
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert!(params(&[("variables", "{}")]).is_err(), "no query");
        assert!(params(&[("query", "{ a }"), ("variables", "nope")]).is_err());
        assert!(params(&[("query", "{ a }"), ("variables", "[1]")]).is_err());
        assert!(params(&[("query", "{ a }"), ("query", "{ b }")]).is_err());
    }
}
