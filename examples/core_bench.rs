//! CPU figures for the core's hot paths, natively. Run by `npm run bench`.
//! Prints numbers; asserts nothing about time.

use hubgate::assertion::{parse_key, Audience};
use hubgate::cookies::Context;
use hubgate::http::{Headers, UnixTime};
use hubgate::identity::{Identity, LoginMethod};
use hubgate::secret::SessionSecret;
use hubgate::session::SessionSettings;
use std::time::Instant;

const EC_JWK: &str = r#"{"kty":"EC","crv":"P-256","kid":"hg-1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;

fn per_op(label: &str, n: u32, mut f: impl FnMut(u32)) {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<44} {us:>10.2} µs/op  ({n} ops)");
}

fn main() {
    let id = Identity {
        username: "alice".into(),
        email: Some("alice@example.edu".into()),
        groups: vec!["students".into(), "physics-101".into()],
        admin: false,
        method: LoginMethod::Oauth,
        auth_state: Default::default(),
    };
    let cfg = SessionSettings {
        secret: SessionSecret::new("0123456789abcdef0123456789abcdef"),
        previous: None,
        max_age: 3600,
        recheck: 30,
    };
    let origin = "https://hub.example.edu";
    let set = hubgate::session::cookie::mint(
        &cfg,
        &id,
        "sid",
        None,
        origin,
        true,
        Context::TopLevel,
        UnixTime(1_000),
    );
    let headers = Headers(vec![(
        "Cookie".into(),
        set.split(';').next().unwrap().to_string(),
    )]);
    println!(
        "session cookie: {} bytes",
        set.split(';').next().unwrap().len()
    );

    per_op("session cookie verify (HS256)", 20_000, |_| {
        hubgate::session::cookie::verify(&cfg, &headers, origin, true, UnixTime(1_001)).unwrap();
    });
    let key = parse_key(EC_JWK).unwrap();
    per_op("assertion mint (ES256 sign, once per login)", 2_000, |i| {
        hubgate::assertion::mint(
            &key,
            &id,
            &Audience {
                issuer: origin,
                hub: "https://origin.example.edu",
                login_path: "/hub/login",
                jti: "bench-jti-0123456789",
            },
            UnixTime(1_000 + i as u64),
        );
    });
}
