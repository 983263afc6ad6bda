//! Reading one binding: lists, booleans, URLs, numbers, PEM keys. Each
//! reader records its problem in the shared error list and returns a value
//! the caller can keep going with, so every problem is reported at once.

use super::ConfigError;
use std::collections::BTreeMap;

pub trait Bindings {
    /// The binding's value; empty strings count as absent.
    fn get(&self, name: &str) -> Option<String>;
}

impl Bindings for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

impl Bindings for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }
}

pub struct Reader<'a, B: Bindings> {
    pub env: &'a B,
    pub errors: Vec<ConfigError>,
}

impl<'a, B: Bindings> Reader<'a, B> {
    pub fn new(env: &'a B) -> Self {
        Reader {
            env,
            errors: Vec::new(),
        }
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn required(&mut self, name: &'static str) -> Option<String> {
        let v = self.string(name);
        if v.is_none() {
            self.errors.push(ConfigError::Missing(name));
        }
        v
    }

    pub fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.string(name) {
            None => default,
            Some(v) => match parse_bool(&v) {
                Some(b) => b,
                None => {
                    self.errors.push(ConfigError::Invalid {
                        name,
                        reason: "must be true, false, 1 or 0".into(),
                    });
                    default
                }
            },
        }
    }

    pub fn list(&mut self, name: &'static str) -> Vec<String> {
        match self.string(name) {
            None => Vec::new(),
            Some(v) => match parse_list(&v) {
                Ok(l) => l,
                Err(reason) => {
                    self.errors.push(ConfigError::Invalid { name, reason });
                    Vec::new()
                }
            },
        }
    }

    pub fn u64_in(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        match self.string(name) {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.errors.push(ConfigError::Invalid {
                        name,
                        reason: format!("must be a whole number from {min} to {max}"),
                    });
                    default
                }
            },
        }
    }

    /// An absolute URL that is https, or http on a loopback host.
    pub fn url(&mut self, name: &'static str) -> Option<url::Url> {
        let raw = self.string(name)?;
        self.check_url(name, &raw)
    }

    pub fn check_url(&mut self, name: &'static str, raw: &str) -> Option<url::Url> {
        match url::Url::parse(raw) {
            Ok(u) if is_secure_url(&u) => Some(u),
            Ok(_) => {
                self.errors.push(ConfigError::NotHttps(name));
                None
            }
            Err(e) => {
                self.errors.push(ConfigError::Invalid {
                    name,
                    reason: format!("is not a URL ({e})"),
                });
                None
            }
        }
    }

    pub fn json(&mut self, name: &'static str) -> Option<serde_json::Value> {
        let raw = self.string(name)?;
        match serde_json::from_str(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(ConfigError::Invalid {
                    name,
                    reason: format!("is not valid JSON ({e})"),
                });
                None
            }
        }
    }

    pub fn invalid(&mut self, name: &'static str, reason: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            name,
            reason: reason.into(),
        });
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Comma/whitespace separated values, or a JSON array of strings.
pub fn parse_list(v: &str) -> Result<Vec<String>, String> {
    let t = v.trim();
    if t.starts_with('[') {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(t).map_err(|e| format!("is not a valid JSON array ({e})"))?;
        return items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("JSON array items must be strings, got {other}")),
            })
            .filter(|r| !matches!(r, Ok(s) if s.is_empty()))
            .collect();
    }
    Ok(t.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// https anywhere; http only on loopback hosts (local development, tests).
pub fn is_secure_url(u: &url::Url) -> bool {
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => is_loopback_host(u),
        _ => false,
    }
}

pub fn is_loopback_host(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// PEM with real or `\n`-escaped newlines, as secrets often arrive.
pub fn normalise_pem(v: &str) -> String {
    v.trim().replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_accepts_commas_whitespace_and_json() {
        assert_eq!(parse_list("a, b  c\nd").unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(parse_list(r#"["a b", "c"]"#).unwrap(), ["a b", "c"]);
        assert!(parse_list("[1]").is_err());
    }

    #[test]
    fn bool_accepts_only_the_four_spellings() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn http_is_refused_except_on_loopback() {
        let ok = |s: &str| is_secure_url(&url::Url::parse(s).unwrap());
        assert!(ok("https://idp.example.org/x"));
        assert!(ok("http://127.0.0.1:9000/"));
        assert!(ok("http://127.8.0.1/"));
        assert!(ok("http://localhost:1/"));
        assert!(ok("http://[::1]:8/"));
        assert!(!ok("http://idp.example.org/"));
        assert!(!ok("http://10.0.0.1/"));
        assert!(!ok("ftp://127.0.0.1/"));
    }

    #[test]
    fn pem_escaped_newlines_are_restored() {
        assert_eq!(normalise_pem("-----A-----\\nabc\\n"), "-----A-----\nabc\n");
    }
}
