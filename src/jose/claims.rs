//! Checks every OpenID-style token shares (OIDC id_token, LTI launch):
//! issuer, audience/azp, and the time window.

use crate::http::UnixTime;
use crate::jose::hs256::from_datetime;
use jwt_compact::Claims;
use serde_json::{Map, Value};

pub type ClaimMap = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("iss {got:?} is not the expected issuer {expected:?}")]
    WrongIssuer {
        got: Option<String>,
        expected: String,
    },
    #[error("aud does not contain client_id {0:?}")]
    WrongAudience(String),
    #[error("several audiences and no azp")]
    MissingAzp,
    #[error("azp {got:?} is not client_id {expected:?}")]
    WrongAzp { got: String, expected: String },
    #[error("no exp claim")]
    MissingExp,
    #[error("token expired at {0}")]
    Expired(u64),
    #[error("no iat claim")]
    MissingIat,
    #[error("iat {0} is in the future")]
    IssuedInFuture(u64),
    #[error("nbf {0} is in the future")]
    NotYetValid(u64),
    #[error("nonce does not match the flow")]
    NonceMismatch,
    #[error("no sub claim")]
    MissingSub,
}

pub fn str_claim<'a>(c: &'a ClaimMap, name: &str) -> Option<&'a str> {
    c.get(name).and_then(Value::as_str)
}

/// OIDC Core 3.1.3.7 steps 2-5 / IMS Security Framework 5.1.3 steps 2-4:
/// `iss` exact; `aud` contains the client_id; with several audiences `azp`
/// must be present; `azp`, when present, must be the client_id.
pub fn check_issuer_and_audience(
    c: &ClaimMap,
    issuer: &str,
    client_id: &str,
) -> Result<(), ClaimError> {
    let iss = str_claim(c, "iss");
    if iss != Some(issuer) {
        return Err(ClaimError::WrongIssuer {
            got: iss.map(str::to_string),
            expected: issuer.into(),
        });
    }
    let auds: Vec<&str> = match c.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&client_id) {
        return Err(ClaimError::WrongAudience(client_id.into()));
    }
    match str_claim(c, "azp") {
        None if auds.len() > 1 => Err(ClaimError::MissingAzp),
        Some(azp) if azp != client_id => Err(ClaimError::WrongAzp {
            got: azp.into(),
            expected: client_id.into(),
        }),
        _ => Ok(()),
    }
}

/// OIDC Core 3.1.3.7 steps 9-10 / IMS 5.1.3 steps 5-6: `exp` in the future,
/// `iat` present and not in the future, `nbf` (if any) passed — each with
/// `leeway` seconds of clock skew.
pub fn check_time<T>(claims: &Claims<T>, now: UnixTime, leeway: u64) -> Result<(), ClaimError> {
    let exp = claims
        .expiration
        .map(from_datetime)
        .ok_or(ClaimError::MissingExp)?;
    if now.0 >= exp.0.saturating_add(leeway) {
        return Err(ClaimError::Expired(exp.0));
    }
    let iat = claims
        .issued_at
        .map(from_datetime)
        .ok_or(ClaimError::MissingIat)?;
    if iat.0 > now.0.saturating_add(leeway) {
        return Err(ClaimError::IssuedInFuture(iat.0));
    }
    if let Some(nbf) = claims.not_before.map(from_datetime) {
        if nbf.0 > now.0.saturating_add(leeway) {
            return Err(ClaimError::NotYetValid(nbf.0));
        }
    }
    Ok(())
}

/// Constant-time nonce comparison.
pub fn check_nonce(c: &ClaimMap, expected: &str) -> Result<(), ClaimError> {
    use subtle::ConstantTimeEq;
    match str_claim(c, "nonce") {
        Some(n) if bool::from(n.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        _ => Err(ClaimError::NonceMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::hs256::to_datetime;
    use serde_json::json;

    fn map(v: Value) -> ClaimMap {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn audience_rules() {
        let ok = map(json!({"iss": "I", "aud": "C"}));
        assert_eq!(check_issuer_and_audience(&ok, "I", "C"), Ok(()));
        let arr = map(json!({"iss": "I", "aud": ["C", "X"]}));
        assert_eq!(
            check_issuer_and_audience(&arr, "I", "C"),
            Err(ClaimError::MissingAzp)
        );
        let azp_bad = map(json!({"iss": "I", "aud": ["C", "X"], "azp": "X"}));
        assert!(matches!(
            check_issuer_and_audience(&azp_bad, "I", "C"),
            Err(ClaimError::WrongAzp { .. })
        ));
        let azp_ok = map(json!({"iss": "I", "aud": ["C", "X"], "azp": "C"}));
        assert_eq!(check_issuer_and_audience(&azp_ok, "I", "C"), Ok(()));
        let wrong = map(json!({"iss": "I", "aud": "X"}));
        assert_eq!(
            check_issuer_and_audience(&wrong, "I", "C"),
            Err(ClaimError::WrongAudience("C".into()))
        );
        let iss = map(json!({"iss": "J", "aud": "C"}));
        assert!(matches!(
            check_issuer_and_audience(&iss, "I", "C"),
            Err(ClaimError::WrongIssuer { .. })
        ));
    }

    #[test]
    fn time_window_with_leeway() {
        let mut c = Claims::new(());
        c.expiration = Some(to_datetime(UnixTime(1000)));
        c.issued_at = Some(to_datetime(UnixTime(900)));
        assert_eq!(check_time(&c, UnixTime(1009), 10), Ok(()));
        assert_eq!(
            check_time(&c, UnixTime(1010), 10),
            Err(ClaimError::Expired(1000))
        );
        c.issued_at = Some(to_datetime(UnixTime(1100)));
        assert_eq!(
            check_time(&c, UnixTime(950), 10),
            Err(ClaimError::IssuedInFuture(1100))
        );
        c.issued_at = None;
        assert_eq!(
            check_time(&c, UnixTime(950), 10),
            Err(ClaimError::MissingIat)
        );
    }
}
