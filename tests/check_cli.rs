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
    let toml = "[vars]\nHUB_ORIGIN = \"https://origin.example.edu\"\nOIDC_ISSUER = \"https://idp.example.org\"\nOAUTH_CLIENT_ID = \"hubgate\"\nALLOWED_USERS = [\"alice\"]\n";
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
