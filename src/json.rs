//! Upstream JSON documents (token responses, key sets, discovery) are
//! objects of valid JSON. serde's derived struct visitors also take a JSON
//! array as the fields in order (`["at"]` would read as
//! `{"access_token": "at"}`), and members they ignore are skipped without
//! checking their escapes; `object` reads the whole document as a value
//! first, so only a well-formed object reaches the typed parse.

use serde::de::{DeserializeOwned, Error as _};

/// Parses `bytes` as a JSON object into `T`; any other JSON value, or text
/// that is not JSON throughout, is refused.
pub fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    if !value.is_object() {
        return Err(serde_json::Error::custom("not a JSON object"));
    }
    serde_json::from_value(value)
}

/// A lifetime in seconds as token endpoints send it: a number, sometimes
/// a string or with a fraction. `None` when it is not a non-negative number.
pub fn seconds(v: &serde_json::Value) -> Option<u64> {
    let whole = |f: f64| (f.is_finite() && f >= 0.0).then_some(f as u64);
    match v {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole)),
        // Through serde_json's number parser: `str::parse::<f64>` would add
        // core's float parsing tables to the wasm (about 14 KB gzipped).
        serde_json::Value::String(s) => serde_json::from_str::<f64>(s.trim()).ok().and_then(whole),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        a: String,
    }

    #[test]
    fn an_array_is_not_an_object_even_when_serde_would_take_it() {
        assert!(serde_json::from_slice::<Doc>(br#"["x"]"#).is_ok());
        assert!(object::<Doc>(br#"["x"]"#).is_err());
        assert!(object::<Doc>(br#" ["x"]"#).is_err());
        assert!(object::<Doc>(b"").is_err());
        assert!(object::<Doc>(b"\"x\"").is_err());
    }

    #[test]
    fn a_lone_surrogate_in_an_ignored_member_is_refused() {
        let text = br#"{"a":"x","other":"\udec3"}"#;
        assert!(serde_json::from_slice::<Doc>(text).is_ok());
        assert!(object::<Doc>(text).is_err());
    }

    #[test]
    fn seconds_from_numbers_and_numeric_strings_only() {
        use serde_json::json;
        assert_eq!(seconds(&json!(3600)), Some(3600));
        assert_eq!(seconds(&json!("3600")), Some(3600));
        assert_eq!(seconds(&json!(59.9)), Some(59));
        assert_eq!(seconds(&json!(-1)), None);
        assert_eq!(seconds(&json!("soon")), None);
        assert_eq!(seconds(&json!(null)), None);
    }

    #[test]
    fn an_object_parses_after_leading_whitespace() {
        let d: Doc = object(b" \r\n\t{\"a\":\"x\"}").unwrap();
        assert_eq!(d.a, "x");
    }
}
