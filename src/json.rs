//! Writing GraphQL responses as JSON: the same bytes `serde_json` writes, faster.
//!
//! A dashboard answer is 140 KB of about 12,000 strings (field names, usernames, global IDs),
//! and serializing it with `serde_json` was a tenth of the request's instructions: its string
//! writer looks every byte up in an escape table, and the body `String` grew by doubling.
//! Here a response's `data` is written straight from the value tree into a buffer sized from
//! the previous answer, and each string is checked eight bytes at a time for anything JSON
//! escapes (`"`, `\` and control characters) and, as nearly always, copied whole when it has
//! none. Everything else (numbers, binary values, extensions, errors) is written by
//! `serde_json` itself. The property tests below check the output against `serde_json`'s,
//! byte for byte.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{BatchResponse, Response, Value};

/// The body of `response`, as `serde_json::to_vec` writes it.
pub fn batch_response_body(response: &BatchResponse) -> Vec<u8> {
    // Start at the size of the last answer: a client asks for the same few shapes over and
    // over, and growing a large body by doubling copied it several times.
    static LAST_SIZE: AtomicUsize = AtomicUsize::new(0);
    let mut out = Vec::with_capacity(LAST_SIZE.load(Ordering::Relaxed).clamp(256, 4 << 20));
    match response {
        BatchResponse::Single(response) => write_response(&mut out, response),
        BatchResponse::Batch(responses) => {
            out.push(b'[');
            for (i, response) in responses.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_response(&mut out, response);
            }
            out.push(b']');
        }
    }
    LAST_SIZE.store(out.len(), Ordering::Relaxed);
    out
}

/// `response` as async-graphql's derived `Serialize` writes it: `data`, then `extensions`
/// and `errors` when they are not empty; but a request that never executed (see
/// [`crate::http::is_request_error`]) has no `data` entry at all, as GraphQL says.
fn write_response(out: &mut Vec<u8>, response: &Response) {
    out.push(b'{');
    let mut first = true;
    let mut entry = |out: &mut Vec<u8>, name: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(name);
    };
    if !crate::http::is_request_error(response) {
        entry(out, b"\"data\":");
        write_value(out, &response.data);
    }
    if !response.extensions.is_empty() {
        entry(out, b"\"extensions\":");
        with_serde_json(out, &response.extensions);
    }
    if !response.errors.is_empty() {
        entry(out, b"\"errors\":");
        with_serde_json(out, &response.errors);
    }
    out.push(b'}');
}

fn with_serde_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(out, value).expect("writing JSON into a Vec cannot fail");
}

/// `value` as its `Serialize` implementation writes it through `serde_json`.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::String(text) => write_str(out, text),
        Value::Enum(name) => write_str(out, name),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        // A one-entry object may be async-graphql's wrapper of raw JSON, whose key is not a
        // GraphQL name: its own serializer knows what to write.
        Value::Object(fields) if fields.len() == 1 && fields.keys().any(|k| k.starts_with('$')) => {
            with_serde_json(out, value)
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
        Value::Number(_) | Value::Binary(_) => with_serde_json(out, value),
    }
}

/// Whether a byte of `word` is below `n` (`n` ≤ 128): bit 7 of the result is set in some
/// byte if and only if one is (which byte may be off, but not whether there is one).
const fn has_byte_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(u64::from_ne_bytes([n; 8])) & !word & u64::from_ne_bytes([0x80; 8]) != 0
}

/// Whether a byte of `word` is one that JSON strings escape: a control character, `"` or `\`.
const fn has_escaped_byte(word: u64) -> bool {
    has_byte_below(word, 0x20)
        || has_byte_below(word ^ u64::from_ne_bytes([b'"'; 8]), 1)
        || has_byte_below(word ^ u64::from_ne_bytes([b'\\'; 8]), 1)
}

/// Whether `bytes` hold a byte that JSON strings escape, looked for eight bytes at a time
/// (the last word overlapping the one before it; a short string in two overlapping halves).
fn needs_escape(bytes: &[u8]) -> bool {
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let len = bytes.len();
    match len {
        8.. => {
            (0..len / 8).any(|i| has_escaped_byte(word(i * 8)))
                || (!len.is_multiple_of(8) && has_escaped_byte(word(len - 8)))
        }
        4.. => has_escaped_byte(u64::from(half(0)) | u64::from(half(len - 4)) << 32),
        _ => bytes
            .iter()
            .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\'),
    }
}

/// `text` as a JSON string, escaped as `serde_json` escapes it: `\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, and `\u00xx` (lowercase hex) for the other control characters.
fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if needs_escape(bytes) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// `bytes` (UTF-8), escaped; the rare string that needs it, one byte at a time.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    // `bytes[copied..i]` needs no escape and is not written yet.
    let mut copied = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let short: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[copied..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        copied = i + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
}

#[cfg(test)]
mod tests {
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{BatchResponse, Name, Number, Response, ServerError, Value};
    use proptest::prelude::*;

    /// What `serde_json` writes, less the `data` entry of a request that never executed.
    fn serde(response: &BatchResponse) -> Vec<u8> {
        let written = serde_json::to_vec(response).unwrap();
        match response {
            BatchResponse::Single(r) if crate::http::is_request_error(r) => {
                let text = String::from_utf8(written).unwrap();
                text.replacen("{\"data\":null,", "{", 1).into_bytes()
            }
            _ => written,
        }
    }

    /// Strings weighted towards what JSON escapes, at every length around a word.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_-]{0,40}",
            proptest::collection::vec(
                prop_oneof![
                    Just('"'),
                    Just('\\'),
                    Just('\u{7f}'),
                    Just('é'),
                    Just('😀'),
                    (0u8..0x20).prop_map(char::from),
                    proptest::char::range('a', 'z'),
                ],
                0..24
            )
            .prop_map(|chars| chars.into_iter().collect()),
            any::<String>(),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            text().prop_map(Value::String),
            "[A-Z_]{1,12}".prop_map(|n| Value::Enum(Name::new(n))),
            proptest::collection::vec(any::<u8>(), 0..6).prop_map(|b| Value::Binary(b.into())),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::vec((text(), inner), 0..6).prop_map(|fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (Name::new(k), v))
                            .collect::<IndexMap<_, _>>(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// Any response, with or without errors and extensions, alone or in a batch, is
        /// written as `serde_json` writes it.
        #[test]
        fn responses_are_written_as_serde_json_writes_them(
            data in value(),
            more in proptest::collection::vec(value(), 0..3),
            message in text(),
            extension in proptest::option::of(value()),
        ) {
            let mut response = Response::new(data);
            if let Some(extension) = extension {
                response.extensions.insert("trace".into(), extension);
                response.errors.push(ServerError::new(message, None));
            }
            let single = BatchResponse::Single(response);
            prop_assert_eq!(super::batch_response_body(&single), serde(&single));
            let batch = BatchResponse::Batch(more.into_iter().map(Response::new).collect());
            prop_assert_eq!(super::batch_response_body(&batch), serde(&batch));
        }

        /// Every string, whatever it holds, is escaped exactly as `serde_json` escapes it.
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in text()) {
            let mut out = Vec::new();
            super::write_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).unwrap());
        }
    }

    /// Each byte that JSON escapes, at each position of a word and in the tail after it.
    #[test]
    fn every_escaped_byte_at_every_position() {
        for byte in (0u8..0x20).chain([b'"', b'\\', 0x7f]) {
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = byte;
                    let text = String::from_utf8(bytes).unwrap();
                    let mut out = Vec::new();
                    super::write_str(&mut out, &text);
                    assert_eq!(out, serde_json::to_vec(&text).unwrap(), "{text:?}");
                }
            }
        }
    }
}
