//! Check results are stored in job histories and shown by discovery: anything that looks like
//! a credential (by key, or as a URL query parameter) is replaced before it leaves the check.

use serde_json::Value;

const SECRET_KEYS: [&str; 11] = [
    "authorization",
    "cookie",
    "token",
    "access_token",
    "api_key",
    "key",
    "password",
    "secret",
    "signature",
    "sig",
    "set-cookie",
];
const MASK: &str = "[REDACTED]";

pub fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key.to_ascii_lowercase().replace('-', "_").as_str())
        || SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str())
}

/// Masks secret keys at any depth and secret query parameters in every string.
pub fn value(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let masked = if is_secret_key(k) {
                        Value::String(MASK.into())
                    } else {
                        value(v)
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(value).collect()),
        Value::String(s) => Value::String(text(s)),
        other => other.clone(),
    }
}

/// Masks `?token=...&sig=...` style parameters wherever they appear in a text.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['?', '&']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(['&', ' ', '#', '"', '\'']).unwrap_or(rest.len());
        let (pair, tail) = rest.split_at(end);
        match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => {
                out.push_str(k);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secret_keys_and_query_parameters_are_masked() {
        let v = value(
            &json!({"headers": {"Authorization": "Bearer x", "Accept": "a"},
            "url": "http://h/p?api_key=abc&x=1&sig=zz", "Password": "p"}),
        );
        assert_eq!(v["headers"]["Authorization"], MASK);
        assert_eq!(v["headers"]["Accept"], "a");
        assert_eq!(v["Password"], MASK);
        assert_eq!(v["url"], "http://h/p?api_key=[REDACTED]&x=1&sig=[REDACTED]");
        assert_eq!(text("no query here"), "no query here");
    }
}
