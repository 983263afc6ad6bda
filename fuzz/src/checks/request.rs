//! Whole requests through `app::handle`, with an `Io` that answers every
//! fetch (IdP, platform, key sets, the hub's login) with fuzzer bytes:
//! never panics; every status is in 100..600; no response header carries a
//! line break; every `Location` is a same-origin path or an https (or
//! loopback http) URL; no secret reaches a response, a proxied request or a
//! log line; every upstream call goes to an https (or loopback) URL and the
//! client secret only in a POST; the hub is called only on its origin and
//! logs someone in only for a request that carried a genuine credential;
//! every proxied request keeps the proxy's promises (`proxy_plan`).
//!
//! Input (see the seeds): a flags byte (bits 0-1: which of the four
//! `fixtures::world`s; bit 6: the one-time store is down), then
//!
//! ```text
//! METHOD /path?query
//! Name: value
//!
//! body
//! ~~~ 200            (one block per upstream answer, in order; or
//! Name: value         `~~~ timeout`, `~~~ down`)
//!
//! body
//! ```
//!
//! `{placeholders}` (`fixtures::World::placeholders`) expand to genuine
//! session and flow cookies, id_tokens signed by the fixture keys, a valid
//! discovery document and key set.

use super::fixtures::{self, Answer, FuzzIo};
use super::keys;
use super::redirect_targets::assert_same_origin_path;
use hubgate::app::{self, App, Outcome};
use hubgate::http::{FetchError, Headers, IncomingRequest, Method, OutboundResponse};

/// Placeholders that stand for a credential: without one, nobody may be
/// logged in at the hub.
const CREDENTIALS: &[&str] = &["{session", "{lti-session", "{oauth-cookie}", "{lti-cookie}"];

fn split_sections(data: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut sections: Vec<Vec<&[u8]>> = vec![Vec::new()];
    for line in data.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"~~~") {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("one section").push(line);
    }
    sections
}

/// Header lines up to the first empty line, then the body.
fn head_and_body(lines: &[&[u8]]) -> (Headers, Vec<u8>) {
    let end = lines
        .iter()
        .position(|l| l.is_empty())
        .unwrap_or(lines.len());
    let heads: Vec<String> = lines[..end]
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    let body = lines.get(end + 1..).unwrap_or_default().join(&b'\n');
    (super::input::headers(&heads), body)
}

fn answer(section: &[&[u8]]) -> Answer {
    let first = String::from_utf8_lossy(section.first().copied().unwrap_or_default());
    let word = first.trim_start_matches('~').trim();
    match word {
        "timeout" => return Err(FetchError::Timeout(5_000)),
        "down" => return Err(FetchError::Network("connection refused".into())),
        _ => {}
    }
    let (headers, body) = head_and_body(section.get(1..).unwrap_or_default());
    Ok(OutboundResponse {
        status: super::input::status(word),
        headers,
        body,
    })
}

fn request(world: &fixtures::World, section: &[&[u8]]) -> IncomingRequest {
    let line = String::from_utf8_lossy(section.first().copied().unwrap_or_default()).into_owned();
    let (method, target) = line.split_once(' ').unwrap_or((line.as_str(), "/"));
    let (headers, body) = head_and_body(section.get(1..).unwrap_or_default());
    let method = Method::parse(method);
    let origin = world.origin;
    let url = if target.starts_with('/') {
        format!("{origin}{target}")
    } else {
        format!("{origin}/{target}")
    };
    IncomingRequest {
        method,
        url: url::Url::parse(&url).unwrap_or_else(|_| url::Url::parse(origin).expect("origin")),
        headers,
        body: (method == Method::Post).then_some(body),
    }
}

thread_local! {
    static APPS: std::cell::RefCell<Vec<Option<App>>> =
        std::cell::RefCell::new((0..fixtures::WORLDS).map(|_| None).collect());
}

/// The world's app with empty caches: the configuration is parsed once per
/// process (parsing the RSA tool key costs more than a request); the
/// caches are new for every input, so each input replays alone.
fn take_app(i: usize, world: &fixtures::World) -> App {
    let kept = APPS.with(|a| a.borrow_mut()[i % fixtures::WORLDS].take());
    let mut app =
        kept.unwrap_or_else(|| App::from_bindings(&world.bindings).expect("fixture world parses"));
    app.keys = Default::default();
    app.discovery = Default::default();
    app.sessions = Default::default();
    app
}

fn put_app(i: usize, app: App) {
    APPS.with(|a| a.borrow_mut()[i % fixtures::WORLDS] = Some(app));
}

fn secrets() -> Vec<String> {
    let d = |jwk: &str| {
        serde_json::from_str::<serde_json::Value>(jwk).expect("fixture")["d"]
            .as_str()
            .expect("d")
            .to_string()
    };
    let pem_line = keys::TOOL_PEM
        .split("\\n")
        .flat_map(|l| l.split('\n'))
        .nth(3)
        .expect("PEM body")
        .to_string();
    vec![
        fixtures::SECRET.into(),
        fixtures::PREVIOUS.into(),
        fixtures::CLIENT_SECRET.into(),
        d(keys::ASSERTION_JWK),
        pem_line,
    ]
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "a secret reached {what}");
    }
}

fn headers_text(h: &Headers) -> String {
    h.0.iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect::<String>()
}

pub fn run(data: &[u8]) {
    let (flags, rest) = super::input::flags(data);
    let world = fixtures::world(usize::from(flags & 3));
    let has_credential = CREDENTIALS
        .iter()
        .any(|c| rest.windows(c.len()).any(|w| w == c.as_bytes()));
    let expanded = fixtures::expand(world, rest);
    let sections = split_sections(&expanded);
    let req = request(world, &sections[0]);
    let answers: Vec<Answer> = sections[1..].iter().map(|s| answer(s)).collect();
    // What the worker is given, as it is given (headers without CR/NUL).
    let mut given = format!(
        "{}{}{}",
        req.url,
        headers_text(&req.headers),
        String::from_utf8_lossy(req.body.as_deref().unwrap_or_default())
    );
    for r in answers.iter().flatten() {
        given.push_str(&headers_text(&r.headers));
        given.push_str(&String::from_utf8_lossy(&r.body));
    }
    let io = FuzzIo::new(answers, flags & 0x40 != 0);
    let app = take_app(usize::from(flags & 3), world);
    check(&app, req, io, &given, has_credential);
    put_app(usize::from(flags & 3), app);
}

fn check(app: &App, req: IncomingRequest, io: FuzzIo, given: &str, has_credential: bool) {
    // Secrets the input itself carries are not leaks (libFuzzer learns
    // strings from comparisons, these included, and may send them back).
    let secrets: Vec<String> = secrets()
        .into_iter()
        .filter(|s| !given.contains(s.as_str()))
        .collect();

    let outcome = futures_executor::block_on(app::handle(app, req.clone(), &io));
    if std::env::var_os("HUBGATE_FUZZ_TRACE").is_some() {
        trace(&req, &outcome, &io);
    }
    match &outcome {
        Outcome::Respond(r) => {
            assert!((100..600).contains(&r.status), "status {}", r.status);
            for (n, v) in &r.headers.0 {
                assert!(
                    !n.contains(['\r', '\n', '\0']) && !v.contains(['\r', '\n', '\0']),
                    "header {n:?}: {v:?} breaks the response"
                );
            }
            for loc in r.headers.get_all("location") {
                if loc.starts_with('/') {
                    assert_same_origin_path(loc);
                } else {
                    assert!(
                        super::discovery::secure_endpoint(loc),
                        "redirect to {loc:?}"
                    );
                }
            }
            assert_no_secret("a response header", &headers_text(&r.headers), &secrets);
            assert_no_secret(
                "a response body",
                &String::from_utf8_lossy(&r.body),
                &secrets,
            );
        }
        Outcome::Proxy(p) => {
            super::proxy_plan::check_plan(&app.config.proxy, &req, p, None);
            assert_no_secret("a proxied request", &headers_text(&p.headers), &secrets);
            for c in &p.set_cookies {
                assert_no_secret("a proxied response's cookie", c, &secrets);
            }
        }
    }
    for line in io.logs.borrow().iter() {
        assert_no_secret("a log line", line, &secrets);
    }
    for f in io.fetched.borrow().iter() {
        assert!(
            super::discovery::secure_endpoint(&f.url),
            "fetched {:?}",
            f.url
        );
        let text = format!(
            "{}{}",
            headers_text(&f.headers),
            String::from_utf8_lossy(f.body.as_deref().unwrap_or_default())
        );
        if text.contains(fixtures::CLIENT_SECRET) || text.contains("Basic ") {
            assert_eq!(f.method, Method::Post, "client secret in a {:?}", f.method);
        }
        assert_no_secret(
            "an upstream request",
            &text.replace(fixtures::CLIENT_SECRET, ""),
            &secrets,
        );
    }
    let hub_origin = app.config.proxy.hub_origin.origin();
    let user_header = &app.config.proxy.headers.user;
    for c in io.hub_calls.borrow().iter() {
        let u = url::Url::parse(&c.url).expect("hub call URL");
        assert_eq!(u.origin(), hub_origin, "hub call off the hub origin");
        if c.headers.get(user_header).is_some() {
            assert!(
                has_credential,
                "logged in at the hub without a credential: {:?}",
                c.headers.get(user_header)
            );
            assert!(
                u.path().ends_with("hub/login"),
                "identity sent to {}",
                u.path()
            );
        }
    }
}

/// `HUBGATE_FUZZ_TRACE=1`: what one input did (for triage and for checking
/// that a seed reaches what it was written for).
fn trace(req: &IncomingRequest, outcome: &Outcome, io: &FuzzIo) {
    eprintln!("request {:?} {}", req.method, req.url);
    match outcome {
        Outcome::Respond(r) => eprintln!(
            "  -> {} {:?} {:?}",
            r.status,
            r.location(),
            r.headers.get_all("set-cookie").count()
        ),
        Outcome::Proxy(p) => eprintln!("  -> proxied to {}", p.url),
    }
    for f in io.fetched.borrow().iter() {
        eprintln!("  fetch {:?} {}", f.method, f.url);
    }
    for c in io.hub_calls.borrow().iter() {
        eprintln!("  hub {:?} {}", c.method, c.url);
    }
    for l in io.logs.borrow().iter() {
        eprintln!("  log {l}");
    }
}
