//! What ends or resumes a session, on arbitrary input: none panics.
//!
//! - `oauth::backchannel::UntrustedLogoutToken::verify` against the fixed
//!   IdP key set (`fixtures::fixed_key_set`, issuer `fixtures::ISSUER`,
//!   client `fixtures::CLIENT_ID`): an `Ok` only for a token signed by one
//!   of its keys with the algorithm the key declares, an allowed one, whose
//!   claims (re-read here from
//!   the payload) satisfy every rule: `iss` is the issuer; `aud` (a string,
//!   or an array whose strings count) contains the client, with several
//!   audiences only beside an `azp`, and a string `azp` only if it is the
//!   client (`jose::claims`); a numeric `iat` within
//!   [now − 300 − leeway, now + leeway]; `exp`, when present, not passed
//!   (now < exp + leeway); `events` an object whose back-channel-logout
//!   member is an object; no `nonce` at all; a non-empty string `sub` or
//!   `sid`; a non-empty string `jti`. The `VerifiedLogout` carries exactly
//!   those `sub`, `sid` and `jti`. The reverse too: a token the harness
//!   signed with an IdP key, well-formed (unique claim names, every value
//!   JSON, time claims whole seconds) and satisfying every rule, verifies.
//! - `oauth::extras::next_link` on arbitrary `Link` headers and base URLs:
//!   a returned URL re-parses to itself and is the base joined with the
//!   `<target>` of a link whose parameters name `rel` and `next`; a first
//!   link written plainly as `<target>; rel="next"` is found.
//! - `session::seal::{seal, open}`: a seal opens to its token for its sid,
//!   with its secret as current or previous one, and for no other sid,
//!   secret, or byte changed, dropped or added; `open` on arbitrary text
//!   finds a token only in a genuine seal (the placeholders below) for that
//!   sid and one of the secrets it was given, and then that seal's token.
//! - `oauth::provider::cilogon::glob`: agrees with a recursive `fnmatch`
//!   for `*` and `?` written here (on up to 64 characters each side).
//!
//! Findings (`super::finding` ids): `link-reparse` (a next link whose
//! serialisation does not parse back to itself: the pager parses it again).
//! Inputs whose URLs would reach the `idna` stub's debug assertion are
//! skipped (`lti_services::trips_idna_stub`).
//!
//! Input: the first line picks the sub-check; the rest is its input.
//!
//! ```text
//! logout <ALG> [kid=<kid>|nokid] [alg=<header alg>] [typ=<typ>] [now=<n>] [leeway=<n>] [allow=<ALG>,…]
//! <claim>: <JSON value>               one per line, signed as the payload
//! ```
//! `<ALG>` picks the signer: ES256 (the IdP's P-256 key, the default),
//! EdDSA (its Ed25519 key), ES256-outsider (a P-256 key outside the set,
//! under the IdP key's kid), HS256 (keyed with the IdP's public JWK text),
//! none (no signature). Not RSA: signing takes milliseconds (fifty times
//! that under coverage instrumentation), so RSA-signed tokens come from the
//! `logout-token` placeholders. The header is `{"alg","kid","typ"}`: kid
//! defaults to the signer's (`ec-1`, `ed-1`), `alg=` overrides the header's
//! algorithm (`alg=RS256` with `kid=rsa-1` or `nokid`: the wrong key type). The payload is the
//! lines as written, `{"<claim>":<value>,…}` (claim names JSON-escaped,
//! split at the first `": "`, else the first `:`; values raw, so they may be
//! bad JSON or repeat a name); `{now}`, `{now-N}`, `{now+N}` in a value are
//! that number. now is `fixtures::T0` unless a number in [10⁹, 10¹¹] (a
//! realistic clock), leeway 60 unless a number up to 600 (the range
//! `OAUTH_TIME_LEEWAY` allows), allow every algorithm unless given.
//!
//! ```text
//! logout-token [now=<n>] [leeway=<n>] [allow=<ALG>,…]
//! <compact JWS>                       {logout-rs256} {logout-es256} {logout-eddsa} {id_token}
//! ```
//! The placeholders are genuine logout tokens (valid at `T0`) and an
//! id_token (with a nonce, no events), signed with the IdP keys.
//!
//! ```text
//! link <base URL>
//! Link: <…>; rel="next"               header lines (any name; `link` is read)
//! ```
//!
//! ```text
//! seal [previous]                     seal under the previous secret
//! <sid>
//! <refresh token>
//! <another sid>
//! <nonce>                             its first 12 bytes, zero-padded (optional)
//! <byte index>                        where a byte is flipped (optional)
//! ```
//!
//! ```text
//! open [current-only]                 without the previous secret
//! <sid>
//! <sealed text>                       {sealed} {sealed-previous} {sealed-sid-2} {sealed-other-secret}
//! ```
//!
//! ```text
//! glob
//! <pattern>
//! <text>
//! ```

use super::fixtures::{self, fixed_key_set, signed_part, CLIENT_ID, ISSUER, PREVIOUS, SECRET, T0};
use super::keys;
use hubgate::http::{OutboundResponse, UnixTime};
use hubgate::jose::keys::Alg;
use hubgate::oauth::backchannel::{Expectations, UntrustedLogoutToken, VerifiedLogout, EVENT};
use hubgate::oauth::extras::next_link;
use hubgate::oauth::provider::cilogon::glob;
use hubgate::secret::{RefreshToken, SessionSecret};
use hubgate::session::seal::{open, seal, NONCE_BYTES};
use jwt_compact::{
    alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPrivateKey},
    jwk::JsonWebKey,
    Algorithm, AlgorithmSignature,
};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// `backchannel::MAX_AGE`: how old a logout token's `iat` may be.
const MAX_AGE: i128 = 300;
const DEFAULT_LEEWAY: u64 = 60;

pub fn run(data: &[u8]) {
    let (first, rest) = super::input::first_line(data);
    let mode = first.split(' ').next().unwrap_or_default();
    let args = first[mode.len()..].trim_start_matches(' ');
    match mode {
        "logout" => logout_claims(args, rest),
        "logout-token" => logout_token(args, rest),
        "link" => link(args, rest),
        "seal" => seal_round_trip(args, rest),
        "open" => open_any(args, rest),
        "glob" => glob_agrees(rest),
        _ => {}
    }
}

// ---------- base64url, written here so the re-reading is independent ----------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// Lenient: unpadded, leftover bits ignored; `None` on any other byte.
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

// ---------- logout tokens ----------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Signer {
    Rsa(Alg),
    Es256,
    EdDsa,
    Outsider,
    Hs256,
    Unsigned,
}

impl Signer {
    fn parse(s: &str) -> Option<Signer> {
        Some(match s {
            "ES256" => Signer::Es256,
            "EdDSA" => Signer::EdDsa,
            "ES256-outsider" => Signer::Outsider,
            "HS256" => Signer::Hs256,
            "none" => Signer::Unsigned,
            // No RSA here: signing takes milliseconds, about fifty times that
            // under coverage instrumentation, which would leave the fuzzer
            // little time for anything else. RSA-signed tokens come from the
            // `logout-token` placeholders; `verify_jwt`'s RSA paths are the
            // `jwt` target's.
            _ => return None,
        })
    }
    fn alg(self) -> &'static str {
        match self {
            Signer::Rsa(a) => a.name(),
            Signer::Es256 | Signer::Outsider => "ES256",
            Signer::EdDsa => "EdDSA",
            Signer::Hs256 => "HS256",
            Signer::Unsigned => "none",
        }
    }
    fn kid(self) -> &'static str {
        match self {
            Signer::Rsa(_) => "rsa-1",
            Signer::EdDsa => "ed-1",
            _ => "ec-1",
        }
    }
    /// Whether this signer holds a key of the IdP's set and signs with the
    /// algorithm that key declares (its JWK's `alg`: the RSA key's is RS256,
    /// so a PS256 signature with it must not verify either).
    fn is_idp(self) -> bool {
        match self {
            Signer::Rsa(a) => a == Alg::Rs256,
            Signer::Es256 => true,
            Signer::EdDsa => cfg!(feature = "eddsa"),
            _ => false,
        }
    }
}

struct SigningKeys {
    rsa: RsaPrivateKey,
    ec: <Es256 as Algorithm>::SigningKey,
    ed: <Ed25519 as Algorithm>::SigningKey,
    outsider: <Es256 as Algorithm>::SigningKey,
}

fn signing_keys() -> &'static SigningKeys {
    static K: OnceLock<SigningKeys> = OnceLock::new();
    K.get_or_init(|| {
        let jwk = |t: &str| serde_json::from_str::<JsonWebKey<'static>>(t).expect("fixture JWK");
        SigningKeys {
            rsa: RsaPrivateKey::try_from(&jwk(keys::RSA_JWK)).expect("RSA key"),
            ec: <Es256 as Algorithm>::SigningKey::try_from(&jwk(keys::EC_JWK)).expect("EC key"),
            ed: <Ed25519 as Algorithm>::SigningKey::try_from(&jwk(keys::ED_JWK)).expect("Ed key"),
            outsider: <Es256 as Algorithm>::SigningKey::try_from(&jwk(keys::ASSERTION_JWK))
                .expect("outsider key"),
        }
    })
}

/// Signatures made so far, by signer and signing input: many mutations
/// change only the first line, and ECDSA signing is the slow part.
fn signature(signer: Signer, message: &[u8]) -> Vec<u8> {
    type Cache = std::collections::HashMap<(String, Vec<u8>), Vec<u8>>;
    static CACHE: OnceLock<std::sync::Mutex<Cache>> = OnceLock::new();
    let slow = matches!(signer, Signer::Es256 | Signer::Outsider);
    if !slow {
        return sign_now(signer, message);
    }
    let key = (format!("{signer:?}"), message.to_vec());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(sig) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return sig.clone();
    }
    let sig = sign_now(signer, message);
    let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
    if c.len() >= 4096 {
        c.clear();
    }
    c.insert(key, sig.clone());
    sig
}

fn sign_now(signer: Signer, message: &[u8]) -> Vec<u8> {
    let k = signing_keys();
    match signer {
        Signer::Rsa(a) => {
            let rsa = match a {
                Alg::Rs256 => Rsa::rs256(),
                Alg::Rs384 => Rsa::rs384(),
                Alg::Rs512 => Rsa::rs512(),
                Alg::Ps256 => Rsa::ps256(),
                Alg::Ps384 => Rsa::ps384(),
                _ => Rsa::ps512(),
            };
            rsa.sign(&k.rsa, message).as_bytes().into_owned()
        }
        Signer::Es256 => Es256.sign(&k.ec, message).as_bytes().into_owned(),
        Signer::EdDsa => Ed25519.sign(&k.ed, message).as_bytes().into_owned(),
        Signer::Outsider => Es256.sign(&k.outsider, message).as_bytes().into_owned(),
        Signer::Hs256 => {
            // The IdP's public key as an HMAC secret: the classic confusion.
            let key = Hs256Key::new(fixtures::public_jwk(keys::EC_JWK).to_string());
            Hs256.sign(&key, message).as_bytes().into_owned()
        }
        Signer::Unsigned => Vec::new(),
    }
}

/// A compact JWS of exactly this header and payload text.
fn sign_raw(signer: Signer, header: &Value, payload: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        b64_encode(header.to_string().as_bytes()),
        b64_encode(payload.as_bytes())
    );
    let sig = signature(signer, signing_input.as_bytes());
    format!("{signing_input}.{}", b64_encode(&sig))
}

/// Logout tokens valid at `T0`, and an id_token (which must never pass for one).
fn genuine_tokens() -> &'static [(&'static str, String)] {
    static G: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    G.get_or_init(|| {
        let claims = |n: u32| {
            json!({
                "iss": ISSUER, "aud": CLIENT_ID, "iat": T0 - 10, "exp": T0 + 120,
                "jti": format!("jti-genuine-{n}"), "sub": "u-1", "sid": format!("idp-sid-{n}"),
                "events": {EVENT: {}},
            })
            .to_string()
        };
        let header = |s: Signer| json!({"alg": s.alg(), "kid": s.kid(), "typ": "logout+jwt"});
        let mut v = vec![
            (
                "{logout-rs256}",
                sign_raw(
                    Signer::Rsa(Alg::Rs256),
                    &header(Signer::Rsa(Alg::Rs256)),
                    &claims(1),
                ),
            ),
            (
                "{logout-es256}",
                sign_raw(Signer::Es256, &header(Signer::Es256), &claims(2)),
            ),
            (
                "{logout-eddsa}",
                sign_raw(Signer::EdDsa, &header(Signer::EdDsa), &claims(3)),
            ),
        ];
        v.push(("{id_token}", fixtures::genuine_jwts()[0].clone()));
        v
    })
}

struct Options {
    signer: Option<Signer>,
    kid: Option<Option<String>>,
    header_alg: Option<String>,
    typ: Option<String>,
    now: u64,
    leeway: u64,
    allow: Vec<Alg>,
}

const ALL_ALGS: [Alg; 8] = [
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
    Alg::Es256,
    Alg::EdDsa,
];

fn options(args: &str) -> Options {
    let mut o = Options {
        signer: None,
        kid: None,
        header_alg: None,
        typ: None,
        now: T0,
        leeway: DEFAULT_LEEWAY,
        allow: ALL_ALGS.to_vec(),
    };
    for w in args.split(' ').filter(|w| !w.is_empty()) {
        match w.split_once('=') {
            Some(("kid", k)) => o.kid = Some(Some(k.to_string())),
            Some(("alg", a)) => o.header_alg = Some(a.to_string()),
            Some(("typ", t)) => o.typ = Some(t.to_string()),
            Some(("now", n)) => {
                o.now = n
                    .parse()
                    .ok()
                    .filter(|n| (1_000_000_000..=100_000_000_000).contains(n))
                    .unwrap_or(T0)
            }
            Some(("leeway", l)) => {
                o.leeway = l
                    .parse()
                    .ok()
                    .filter(|l| *l <= 600)
                    .unwrap_or(DEFAULT_LEEWAY)
            }
            Some(("allow", list)) => {
                let picked: Vec<Alg> = list.split(',').filter_map(Alg::parse).collect();
                if !picked.is_empty() {
                    o.allow = picked;
                }
            }
            Some(_) => {}
            None if w == "nokid" => o.kid = Some(None),
            None => o.signer = o.signer.or(Signer::parse(w)),
        }
    }
    o
}

/// `{now}`, `{now-N}`, `{now+N}` in `text` as numbers.
fn expand_now(text: &str, now: u64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{now") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 4..];
        let close = after.find('}');
        let offset = close.and_then(|c| {
            let inner = &after[..c];
            if inner.is_empty() {
                return Some(0i128);
            }
            let (negative, digits) = match (inner.strip_prefix('+'), inner.strip_prefix('-')) {
                (Some(d), _) => (false, d),
                (_, Some(d)) => (true, d),
                _ => return None,
            };
            if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let n: i128 = digits.parse().ok()?;
            Some(if negative { -n } else { n })
        });
        match (close, offset) {
            (Some(c), Some(off)) => {
                out.push_str(&(i128::from(now) + off).to_string());
                rest = &after[c + 1..];
            }
            _ => {
                out.push_str("{now");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn logout_claims(args: &str, body: &[u8]) {
    let o = options(args);
    let signer = o.signer.unwrap_or(Signer::Es256);
    let mut names = Vec::new();
    let mut members = Vec::new();
    let mut values_json = true;
    for line in super::input::lines(body) {
        if line.trim().is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(": ")
            .or_else(|| line.split_once(':'))
            .unwrap_or((line.as_str(), "null"));
        let value = expand_now(value.trim(), o.now);
        values_json &= serde_json::from_str::<Value>(&value).is_ok();
        members.push(format!("{}:{value}", Value::from(name)));
        names.push(name.to_string());
    }
    let payload = format!("{{{}}}", members.join(","));
    let kid = o
        .kid
        .clone()
        .unwrap_or_else(|| Some(signer.kid().to_string()));
    let header_alg = o
        .header_alg
        .clone()
        .unwrap_or_else(|| signer.alg().to_string());
    let mut header = Map::new();
    header.insert("alg".into(), header_alg.clone().into());
    if let Some(k) = &kid {
        header.insert("kid".into(), k.clone().into());
    }
    header.insert(
        "typ".into(),
        o.typ.clone().unwrap_or_else(|| "logout+jwt".into()).into(),
    );
    let token = sign_raw(signer, &Value::Object(header), &payload);
    let e = expectations(&o);
    let result = UntrustedLogoutToken(&token).verify(fixed_key_set(), &e);

    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    let claims = read_claims(&token);
    // Whether the token is well-formed and signed as the IdP would sign it,
    // so only the claim rules decide.
    let well_formed = signer.is_idp()
        && header_alg == signer.alg()
        && Alg::parse(&header_alg).is_some_and(|a| o.allow.contains(&a))
        && kid.as_deref().is_none_or(|k| k == signer.kid())
        && values_json
        && unique.len() == names.len()
        && claims.as_ref().is_some_and(|c| {
            ["iat", "exp", "nbf"].iter().all(|n| {
                c.get(*n)
                    .is_none_or(|t| t.as_u64().is_some_and(|t| t <= 100_000_000_000))
            })
        });
    match result {
        Ok(v) => {
            assert!(
                signer.is_idp(),
                "a token signed by {signer:?} (header alg {header_alg:?}) verified: {token}"
            );
            let alg = Alg::parse(&header_alg).expect("a verified alg");
            assert!(o.allow.contains(&alg), "{alg:?} is not allowed");
            assert_eq!(header_alg, signer.alg(), "verified under another algorithm");
            satisfies_rules(&token, &e, &v);
        }
        Err(err) => {
            assert!(!err.to_string().is_empty());
            if well_formed {
                let c = claims.expect("well-formed claims");
                let broken = rules(&c, &e);
                assert!(
                    broken.is_err(),
                    "a valid logout token was refused ({err}): {payload}"
                );
            }
        }
    }
}

fn logout_token(args: &str, body: &[u8]) {
    let o = options(args);
    let (line, _) = super::input::first_line(body);
    let mut token = line;
    if token.contains('{') {
        for (name, value) in genuine_tokens() {
            token = token.replace(name, value);
        }
    }
    let e = expectations(&o);
    match UntrustedLogoutToken(&token).verify(fixed_key_set(), &e) {
        Ok(v) => {
            let genuine = genuine_tokens()
                .iter()
                .find(|(_, g)| signed_part(g) == signed_part(&token));
            let (_, g) =
                genuine.unwrap_or_else(|| panic!("a forged logout token verified: {token:?}"));
            let alg = jwt_compact::UntrustedToken::new(g.as_str())
                .ok()
                .and_then(|t| Alg::parse(t.algorithm()))
                .expect("genuine alg");
            assert!(o.allow.contains(&alg), "{alg:?} is not allowed");
            satisfies_rules(&token, &e, &v);
        }
        Err(err) => {
            assert!(!err.to_string().is_empty());
            // Completeness: a genuine logout token verifies when it should.
            if let Some((name, _)) = genuine_tokens().iter().find(|(_, g)| *g == token) {
                let alg = jwt_compact::UntrustedToken::new(token.as_str())
                    .ok()
                    .and_then(|t| Alg::parse(t.algorithm()));
                let should = name.starts_with("{logout")
                    && alg.is_some_and(|a| {
                        o.allow.contains(&a) && (a != Alg::EdDsa || cfg!(feature = "eddsa"))
                    })
                    && read_claims(&token).is_some_and(|c| rules(&c, &e).is_ok());
                assert!(!should, "the genuine {name} was refused: {err}");
            }
        }
    }
}

fn expectations(o: &Options) -> Expectations<'_> {
    Expectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        algs: &o.allow,
        now: UnixTime(o.now),
        leeway: o.leeway,
    }
}

/// The payload of a compact JWS as a JSON object, read here.
fn read_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let payload = parts.nth(1)?;
    match serde_json::from_slice(&b64_decode(payload)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A time claim in whole seconds, as `jwt-compact` reads it (a float
/// truncated toward zero).
fn seconds(v: &Value) -> Option<i128> {
    if let Some(i) = v.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = v.as_u64() {
        Some(i128::from(u))
    } else {
        v.as_f64().map(|f| i128::from(f as i64))
    }
}

fn nonempty<'a>(c: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    c.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Every rule a logout token's claims must satisfy; the first one broken.
fn rules(c: &Map<String, Value>, e: &Expectations<'_>) -> Result<(), &'static str> {
    if c.get("iss").and_then(Value::as_str) != Some(e.issuer) {
        return Err("iss");
    }
    let auds: Vec<&str> = match c.get("aud") {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !auds.contains(&e.client_id) {
        return Err("aud");
    }
    match c.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != e.client_id => return Err("azp"),
        None if auds.len() > 1 => return Err("azp missing"),
        _ => {}
    }
    let now = i128::from(e.now.0);
    let leeway = i128::from(e.leeway);
    let iat = c.get("iat").and_then(seconds).ok_or("iat")?;
    if iat < now - MAX_AGE - leeway || iat > now + leeway {
        return Err("iat window");
    }
    if let Some(exp) = c.get("exp") {
        let exp = seconds(exp).ok_or("exp")?;
        if now >= exp + leeway {
            return Err("exp passed");
        }
    }
    let event = c
        .get("events")
        .and_then(Value::as_object)
        .and_then(|m| m.get(EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err("events");
    }
    if c.contains_key("nonce") {
        return Err("nonce");
    }
    if nonempty(c, "sub").is_none() && nonempty(c, "sid").is_none() {
        return Err("sub or sid");
    }
    nonempty(c, "jti").ok_or("jti")?;
    Ok(())
}

/// A verified logout token's own claims satisfy every rule, and the result
/// carries them.
fn satisfies_rules(token: &str, e: &Expectations<'_>, v: &VerifiedLogout) {
    let c = read_claims(token)
        .unwrap_or_else(|| panic!("a verified token whose payload is no JSON object: {token}"));
    if let Err(rule) = rules(&c, e) {
        panic!(
            "a logout token breaking the {rule} rule verified (now {}, leeway {}): {}",
            e.now.0,
            e.leeway,
            Value::Object(c)
        );
    }
    assert_eq!(v.sub.as_deref(), nonempty(&c, "sub"), "sub");
    assert_eq!(v.sid.as_deref(), nonempty(&c, "sid"), "sid");
    assert_eq!(Some(v.jti.as_str()), nonempty(&c, "jti"), "jti");
}

// ---------- Link: rel="next" ----------

fn link(base: &str, rest: &[u8]) {
    use super::lti_services::trips_idna_stub;
    let lines: Vec<String> = super::input::lines(rest)
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect();
    let headers = super::input::headers(&lines);
    if trips_idna_stub(base) || headers.0.iter().any(|(_, v)| trips_idna_stub(v)) {
        return;
    }
    let resp = OutboundResponse {
        status: 200,
        headers,
        body: b"[]".to_vec(),
    };
    let got = next_link(&resp, base);
    let parsed_base = url::Url::parse(base).ok();
    let Some(next) = got else {
        // Completeness: a first link written plainly is found.
        if let (Some(b), Some(first)) = (&parsed_base, resp.headers.get("link")) {
            let piece = first.split(',').next().unwrap_or_default().trim();
            let plain = piece.strip_prefix('<').and_then(|p| p.split_once('>'));
            if let Some((target, params)) = plain {
                let params = params.trim().to_ascii_lowercase();
                if matches!(
                    params.as_str(),
                    "; rel=\"next\"" | "; rel=next" | ";rel=next"
                ) {
                    assert!(
                        b.join(target.trim_end()).is_err(),
                        "the next link {first:?} on {base:?} was not found"
                    );
                }
            }
        }
        return;
    };
    let b = parsed_base
        .unwrap_or_else(|| panic!("a next link {next} off a base {base:?} that does not parse"));
    super::finding(
        "link-reparse",
        url::Url::parse(next.as_str()).as_ref() == Ok(&next),
        || format!("the next link {next} does not parse back to itself (base {base:?})"),
    );
    // It is the base joined with the target of some link naming rel=next.
    let from_a_link = resp.headers.get_all("link").any(|h| {
        h.split(',').any(|piece| {
            let Some((target, params)) = piece
                .trim()
                .strip_prefix('<')
                .and_then(|p| p.split_once('>'))
            else {
                return false;
            };
            let params = params.to_ascii_lowercase();
            params.contains("rel")
                && params.contains("next")
                && b.join(target.trim_end()).ok().as_ref() == Some(&next)
        })
    });
    assert!(
        from_a_link,
        "the next link {next} is no link's target on {base:?}: {:?}",
        resp.headers.0
    );
}

// ---------- sealed refresh tokens ----------

struct Genuine {
    name: &'static str,
    secret: &'static str,
    sid: &'static str,
    token: &'static str,
    sealed: String,
}

const OTHER_SECRET: &str = "fuzz-session-secret-of-another-deployment";

fn genuine_seals() -> &'static [Genuine] {
    static G: OnceLock<Vec<Genuine>> = OnceLock::new();
    G.get_or_init(|| {
        [
            ("{sealed}", SECRET, "sid-1", "rt-genuine-1", 1u8),
            ("{sealed-previous}", PREVIOUS, "sid-1", "rt-genuine-2", 2),
            ("{sealed-sid-2}", SECRET, "sid-2", "rt-genuine-3", 3),
            (
                "{sealed-other-secret}",
                OTHER_SECRET,
                "sid-1",
                "rt-genuine-4",
                4,
            ),
        ]
        .into_iter()
        .map(|(name, secret, sid, token, n)| Genuine {
            name,
            secret,
            sid,
            token,
            sealed: seal(
                &SessionSecret::new(secret),
                sid,
                &RefreshToken::new(token),
                [n; NONCE_BYTES],
            )
            .expect("fixture seal"),
        })
        .collect()
    })
}

fn seal_round_trip(args: &str, rest: &[u8]) {
    let lines = super::input::lines(rest);
    let line = |i: usize| lines.get(i).map(String::as_str).unwrap_or_default();
    let (sid, token, other) = (line(0), line(1), line(2));
    let mut nonce = [0u8; NONCE_BYTES];
    for (n, b) in nonce.iter_mut().zip(line(3).bytes()) {
        *n = b;
    }
    let flip: usize = line(4).trim().parse().unwrap_or(0);
    let (current, previous) = (SessionSecret::new(SECRET), SessionSecret::new(PREVIOUS));
    let under_previous = args.split(' ').any(|w| w == "previous");
    let (own, foreign) = if under_previous {
        (&previous, &current)
    } else {
        (&current, &previous)
    };
    let rt = RefreshToken::new(token);
    let sealed = seal(own, sid, &rt, nonce).expect("sealing never fails");
    if token.len() >= 12 {
        assert!(!sealed.contains(token), "the seal shows the token");
    }
    let opened = |s: &SessionSecret, p: Option<&SessionSecret>, sid: &str, text: &str| {
        open(s, p, sid, text).map(|t| t.expose().to_string())
    };
    assert_eq!(
        opened(own, None, sid, &sealed).as_deref(),
        Some(token),
        "a seal does not open to its token"
    );
    assert_eq!(
        opened(foreign, Some(own), sid, &sealed).as_deref(),
        Some(token),
        "a seal does not open after a rotation"
    );
    assert_eq!(
        opened(foreign, None, sid, &sealed),
        None,
        "opened with another secret"
    );
    let other_secret = SessionSecret::new(OTHER_SECRET);
    assert_eq!(opened(&other_secret, Some(foreign), sid, &sealed), None);
    if other != sid {
        assert_eq!(
            opened(own, Some(foreign), other, &sealed),
            None,
            "a seal for {sid:?} opened for {other:?}"
        );
    }
    let bytes = b64_decode(&sealed).expect("a seal is base64url");
    let mut flipped = bytes.clone();
    let i = flip % flipped.len();
    flipped[i] ^= 1 << (flip / flipped.len() % 8);
    let mut longer = bytes.clone();
    longer.push(0);
    for (what, changed) in [
        ("a flipped bit", flipped),
        ("a byte dropped", bytes[..bytes.len() - 1].to_vec()),
        ("a byte added", longer),
    ] {
        assert_eq!(
            opened(own, Some(foreign), sid, &b64_encode(&changed)),
            None,
            "a seal with {what} opened"
        );
    }
}

fn open_any(args: &str, rest: &[u8]) {
    let (sid, sealed) = super::input::first_line(rest);
    let mut text = String::from_utf8_lossy(sealed).into_owned();
    if text.contains('{') {
        for g in genuine_seals() {
            text = text.replace(g.name, &g.sealed);
        }
    }
    let current_only = args.split(' ').any(|w| w == "current-only");
    let current = SessionSecret::new(SECRET);
    let previous = SessionSecret::new(PREVIOUS);
    let secrets: &[&str] = if current_only {
        &[SECRET]
    } else {
        &[SECRET, PREVIOUS]
    };
    let got = open(&current, (!current_only).then_some(&previous), &sid, &text);
    let decoded = b64_decode(text.trim());
    let genuine = genuine_seals().iter().find(|g| {
        g.sid == sid
            && secrets.contains(&g.secret)
            && decoded.is_some()
            && b64_decode(&g.sealed) == decoded
    });
    match (got, genuine) {
        (Some(t), Some(g)) => assert_eq!(t.expose(), g.token, "{} opened to another token", g.name),
        (Some(_), None) => panic!("a seal opened that is no genuine seal for {sid:?}: {text:?}"),
        (None, Some(g)) if text.trim() == g.sealed => {
            panic!("the genuine {} did not open for {sid:?}", g.name)
        }
        (None, _) => {}
    }
}

// ---------- CILogon's allowed-domain glob ----------

/// `fnmatch` for `*` and `?` alone, by recursion (memoised: a pattern of
/// many stars would take exponential time otherwise).
fn fnmatch(p: &[char], t: &[char]) -> bool {
    fn go(p: &[char], t: &[char], i: usize, j: usize, memo: &mut [Option<bool>], w: usize) -> bool {
        if let Some(r) = memo[i * w + j] {
            return r;
        }
        let r = match p.get(i) {
            None => j == t.len(),
            Some('*') => {
                go(p, t, i + 1, j, memo, w) || (j < t.len() && go(p, t, i, j + 1, memo, w))
            }
            Some(c) => j < t.len() && (*c == '?' || *c == t[j]) && go(p, t, i + 1, j + 1, memo, w),
        };
        memo[i * w + j] = Some(r);
        r
    }
    let w = t.len() + 1;
    let mut memo = vec![None; (p.len() + 1) * w];
    go(p, t, 0, 0, &mut memo, w)
}

fn glob_agrees(rest: &[u8]) {
    let (pattern, after) = super::input::first_line(rest);
    let (text, _) = super::input::first_line(after);
    let got = glob(&pattern, &text);
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    if p.len() <= 64 && t.len() <= 64 {
        assert_eq!(
            got,
            fnmatch(&p, &t),
            "glob({pattern:?}, {text:?}) disagrees with fnmatch"
        );
    }
}
