//! `url_policy::{safe_path, next_or_home}`, `lti::launch::landing` and
//! `lti::deep_linking::content_item` on arbitrary targets: whatever they
//! accept or produce is a same-origin path — joined to `https://hub.example/`
//! (or a deeper page) it keeps that origin — with no control characters or
//! white space, no backslash, and no `//` prefix; landings and content
//! items stay under BASE_URL.
//!
//! Input: a flags byte (BASE_URL: `/`, `/jh/` or `/a/b/`), the candidate on
//! the first line, a title on the second.

use super::fixtures::{LOOPBACK_ORIGIN, ORIGIN};
use hubgate::lti::deep_linking::content_item;
use hubgate::lti::launch::landing;
use hubgate::url_policy::{next_or_home, safe_path};

const BASES: [&str; 3] = ["/", "/jh/", "/a/b/"];

/// The policy every redirect the worker sends must meet.
pub fn assert_same_origin_path(p: &str) {
    assert!(p.starts_with('/'), "{p:?} is not a path");
    assert!(!p.starts_with("//") && !p.starts_with("/\\"), "{p:?}");
    assert!(!p.contains('\\'), "{p:?} has a backslash");
    assert!(
        !p.chars().any(|c| c.is_control() || c.is_whitespace()),
        "{p:?} has control characters or white space"
    );
    for base in [
        "https://hub.example/",
        "https://hub.example/jh/deep/page?q=1#f",
    ] {
        let b = url::Url::parse(base).expect("base");
        let joined = b
            .join(p)
            .unwrap_or_else(|e| panic!("{p:?} does not join: {e}"));
        assert_eq!(joined.origin(), b.origin(), "{p:?} leaves the origin");
    }
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let base = BASES[usize::from(flags) % BASES.len()];
    let (candidate, rest) = super::input::first_line(rest);
    let (title, _) = super::input::first_line(rest);

    if let Some(p) = safe_path(&candidate) {
        assert_eq!(p, candidate);
        assert_same_origin_path(p);
    }
    match next_or_home(Some(&candidate), base) {
        Ok(p) => {
            assert_same_origin_path(&p);
            if candidate.is_empty() {
                assert_eq!(p, format!("{base}hub/"));
            }
        }
        Err(_) => assert!(!candidate.is_empty() && safe_path(&candidate).is_none()),
    }
    assert_eq!(next_or_home(None, base).ok(), Some(format!("{base}hub/")));

    for origin in [ORIGIN, LOOPBACK_ORIGIN] {
        let l = landing(&candidate, origin, base);
        assert_same_origin_path(&l);
        assert!(l.starts_with(base), "landing {l:?} outside {base:?}");
        assert!(
            !l.starts_with(&format!("{base}hub/lti13/")),
            "landing {l:?} on the LTI routes"
        );
        match content_item(origin, base, Some(&candidate), Some(&title)) {
            Ok(v) => {
                let url = v["url"].as_str().expect("url");
                let path = url.strip_prefix(origin).expect("item on this origin");
                assert_same_origin_path(path);
                assert!(path.starts_with(base));
                assert_eq!(path, candidate.trim());
                let t = v["title"].as_str().expect("title");
                assert!(!t.is_empty() && t.chars().count() <= 200 && t == title.trim());
            }
            Err(e) => assert_eq!(e.status(), 400),
        }
    }
}
