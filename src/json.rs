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
    fn an_object_parses_after_leading_whitespace() {
        let d: Doc = object(b" \r\n\t{\"a\":\"x\"}").unwrap();
        assert_eq!(d.a, "x");
    }
}
