//! Validate a hubgate configuration before `wrangler deploy`.
//!
//! ```text
//! cargo run --bin hubgate-check -- wrangler.toml [--env production] [--env-file .dev.vars]
//! ```
//! Bindings are read from `[vars]` (or `[env.<name>.vars]`), then from the
//! env file (`KEY=VALUE` lines, as in `.dev.vars`), then from the process
//! environment, so secrets can be checked without writing them to a file.
//! Exit status 0 when the configuration parses, 1 with every error listed.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(native::run(std::env::args().skip(1).collect()));
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use hubgate::config;
    use std::collections::BTreeMap;

    /// Every binding name hubgate reads, for picking secrets out of the environment.
    const NAMES: &[&str] = &[
        "BASE_URL",
        "HUB_ORIGIN",
        "SESSION_SECRET",
        "SESSION_SECRET_PREVIOUS",
        "SESSION_MAX_AGE",
        "OAUTH_CLIENT_ID",
        "OAUTH_CLIENT_SECRET",
        "OAUTH2_AUTHORIZE_URL",
        "OAUTH2_TOKEN_URL",
        "OAUTH2_USERDATA_URL",
        "OAUTH2_USERNAME_KEY",
        "OAUTH_CALLBACK_URL",
        "OAUTH_LOGOUT_REDIRECT_URL",
        "LOGIN_SERVICE",
        "OIDC_ISSUER",
        "OIDC_JWKS_URL",
        "OAUTH_SCOPES",
        "OAUTH_EXTRA_AUTHORIZE_PARAMS",
        "OAUTH_BASIC_AUTH",
        "OAUTH_TIME_LEEWAY",
        "ALLOW_ALL",
        "ALLOWED_USERS",
        "ADMIN_USERS",
        "BLOCKED_USERS",
        "ALLOWED_GROUPS",
        "ADMIN_GROUPS",
        "GROUPS_CLAIM",
        "USERNAME_MAP",
        "AUTO_LOGIN",
        "PASS_AUTHORIZATION",
        "HEADER_USER",
        "HEADER_EMAIL",
        "HEADER_GROUPS",
        "HEADER_ADMIN",
        "ASSERTION_SIGNING_KEY",
        "ASSERTION_SIGNING_KEY_PREVIOUS",
        "ASSERTION_AUTH_STATE_CLAIMS",
        "LTI13_ISSUER",
        "LTI13_CLIENT_ID",
        "LTI13_AUTHORIZE_URL",
        "LTI13_JWKS_ENDPOINT",
        "LTI13_DEPLOYMENT_IDS",
        "LTI13_PLATFORMS",
        "LTI13_USERNAME_KEY",
        "LTI13_TIME_LEEWAY",
        "LTI13_ADMIN_ROLES",
        "LTI13_TOOL_NAME",
        "LTI13_TOOL_DESCRIPTION",
        "LTI13_PRIVATE_KEY",
    ];

    fn usage() -> i32 {
        eprintln!("usage: hubgate-check <wrangler.toml> [--env NAME] [--env-file FILE]");
        2
    }

    fn vars_from_toml(path: &str, env: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let doc: toml::Table = text.parse().map_err(|e| format!("{path}: {e}"))?;
        let vars = match env {
            None => doc.get("vars"),
            Some(name) => doc
                .get("env")
                .and_then(|e| e.get(name))
                .and_then(|e| e.get("vars")),
        };
        let mut out = BTreeMap::new();
        if let Some(toml::Value::Table(t)) = vars {
            for (k, v) in t {
                let s = match v {
                    toml::Value::String(s) => s.clone(),
                    // Workers hand non-string vars over as JSON.
                    other => serde_json::to_string(other).map_err(|e| e.to_string())?,
                };
                out.insert(k.clone(), s);
            }
        }
        Ok(out)
    }

    fn vars_from_env_file(path: &str, out: &mut BTreeMap<String, String>) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("{path}: line without '=': {line}"));
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            out.insert(k.trim().to_string(), v.to_string());
        }
        Ok(())
    }

    pub fn run(args: Vec<String>) -> i32 {
        let (mut file, mut env, mut env_file) = (None, None, None);
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--env" => env = it.next(),
                "--env-file" => env_file = it.next(),
                "-h" | "--help" => return usage(),
                _ if file.is_none() => file = Some(a),
                _ => return usage(),
            }
        }
        let Some(file) = file else { return usage() };
        let mut vars = match vars_from_toml(&file, env.as_deref()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        if let Some(f) = env_file {
            if let Err(e) = vars_from_env_file(&f, &mut vars) {
                eprintln!("{e}");
                return 1;
            }
        }
        for name in NAMES {
            if let Ok(v) = std::env::var(name) {
                vars.insert(name.to_string(), v);
            }
        }
        match config::parse(&vars) {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&cfg.summary()).unwrap_or_default()
                );
                eprintln!("configuration OK");
                0
            }
            Err(errors) => {
                eprintln!("configuration has {} error(s):", errors.len());
                for e in errors {
                    eprintln!("  - {e}");
                }
                1
            }
        }
    }
}
