//! `hubgate-check`: the pre-deploy configuration check.

use std::process::Command;

fn check(toml: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!(
        "hubgate-check-{}-{}",
        std::process::id(),
        toml.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubgate-check"));
    cmd.arg(&path).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lists_every_error_and_exits_1() {
    let (code, err) = check(
        "[vars]\nHUB_ORIGIN = \"http://hub.internal\"\nOAUTH_CLIENT_ID = \"x\"\n",
        &[],
    );
    assert_eq!(code, 1);
    for e in [
        "HUB_ORIGIN is not an https URL",
        "missing SESSION_SECRET",
        "missing OAUTH_CLIENT_SECRET",
        "missing OAUTH2_TOKEN_URL",
    ] {
        assert!(err.contains(e), "{e:?} in {err}");
    }
}

#[test]
fn accepts_vars_plus_secrets_from_the_environment() {
    let toml = "[vars]\nHUB_ORIGIN = \"https://origin.example.edu\"\nOIDC_ISSUER = \"https://idp.example.org\"\nOAUTH_CLIENT_ID = \"hubgate\"\nALLOWED_USERS = [\"alice\"]\n[[durable_objects.bindings]]\nname = \"ONE_TIME\"\nclass_name = \"OneTime\"\n";
    let (code, err) = check(
        toml,
        &[
            ("OAUTH_CLIENT_SECRET", "s"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("configuration OK"));
}

const SECRETS: &[(&str, &str)] = &[
    ("OAUTH_CLIENT_SECRET", "s"),
    ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
];
const OIDC: &str = "[vars]\nHUB_ORIGIN = \"https://origin.example.edu\"\nOIDC_ISSUER = \"https://idp.example.org\"\nOAUTH_CLIENT_ID = \"hubgate\"\nALLOW_ALL = \"true\"\n";

#[test]
fn refuses_a_worker_without_a_one_time_store() {
    let (code, err) = check(OIDC, SECRETS);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing binding ONE_TIME"), "{err}");
}

#[test]
fn kv_one_time_store_is_an_explicit_warned_choice() {
    let toml = format!(
        "{OIDC}ONE_TIME_STORE = \"kv\"\n[[kv_namespaces]]\nbinding = \"NONCES\"\nid = \"x\"\n"
    );
    let (code, err) = check(&toml, SECRETS);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: ONE_TIME_STORE=kv"), "{err}");
    let (code, err) = check(&format!("{OIDC}ONE_TIME_STORE = \"kv\"\n"), SECRETS);
    assert_eq!(code, 1);
    assert!(err.contains("missing binding NONCES"), "{err}");
}

#[test]
fn warns_when_no_assertion_key_is_set() {
    let toml = format!(
        "{OIDC}[[durable_objects.bindings]]\nname = \"ONE_TIME\"\nclass_name = \"OneTime\"\n"
    );
    let (code, err) = check(&toml, SECRETS);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: ASSERTION_SIGNING_KEY is not set"),
        "{err}"
    );
    assert!(
        err.contains("single-user servers can reach the hub"),
        "{err}"
    );
}

#[test]
fn the_shipped_wrangler_toml_declares_every_binding_the_worker_needs() {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).unwrap();
    let with_login = shipped.replace("[vars]\n", "[vars]\nOIDC_ISSUER = \"https://idp.example.org\"\nOAUTH_CLIENT_ID = \"hubgate\"\nALLOW_ALL = \"true\"\n");
    let (code, err) = check(&with_login, SECRETS);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("NONCES is not bound"), "{err}");
}
