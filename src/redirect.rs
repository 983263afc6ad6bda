//! `next` and every other redirect target: only same-origin paths.

/// The path itself when it is a safe same-origin path, else `None`.
///
/// Refused: anything not starting with `/`; `//` and `/\` (browsers read both
/// as a scheme-relative URL to another host); any backslash; control
/// characters and whitespace (browsers strip tabs and newlines, which turns
/// `/\t/evil` into `//evil`).
pub fn safe_path(raw: &str) -> Option<&str> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && !raw.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        return None;
    }
    // Parse against a placeholder origin: the result must stay on it.
    let base = url::Url::parse("https://hubgate.invalid/").ok()?;
    let joined = base.join(raw).ok()?;
    (joined.origin() == base.origin()).then_some(raw)
}

/// `next` if given and safe; the hub's home under `base_path` if absent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirect target is not a same-origin path")]
pub struct UnsafeRedirect;

/// Refused when a `next` was given but is not safe.
pub fn next_or_home(next: Option<&str>, base_path: &str) -> Result<String, UnsafeRedirect> {
    match next.filter(|n| !n.is_empty()) {
        None => Ok(format!("{base_path}hub/")),
        Some(n) => safe_path(n).map(str::to_string).ok_or(UnsafeRedirect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        for p in ["/", "/hub/", "/user/alice/lab?x=1#f", "/a%2F%2Fb"] {
            assert_eq!(safe_path(p), Some(p));
        }
    }

    #[test]
    fn refuses_open_redirect_shapes() {
        for p in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil",
            "evil.example",
            "",
            "/%0d%0a".replace("%0d%0a", "\r\n").as_str(),
        ] {
            assert_eq!(safe_path(p), None, "{p:?} must be refused");
        }
    }

    #[test]
    fn missing_next_goes_home_under_base() {
        assert_eq!(next_or_home(None, "/jh/").unwrap(), "/jh/hub/");
        assert!(next_or_home(Some("//x"), "/").is_err());
    }
}
