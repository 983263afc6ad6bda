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
    use hubgate::bindings::NAMES;
    use hubgate::config;
    use std::collections::BTreeMap;

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
        // KV namespaces and Durable Objects are bindings too: record each
        // declared name so the configuration sees it as present.
        let scope = match env {
            None => Some(&doc),
            Some(name) => doc
                .get("env")
                .and_then(|e| e.get(name))
                .and_then(|e| e.as_table()),
        };
        if let Some(scope) = scope {
            let kv = scope.get("kv_namespaces").and_then(|v| v.as_array());
            let dobj = scope
                .get("durable_objects")
                .and_then(|d| d.get("bindings"))
                .and_then(|v| v.as_array());
            for (list, key) in [(kv, "binding"), (dobj, "name")] {
                for b in list.into_iter().flatten() {
                    if let Some(name) = b.get(key).and_then(|n| n.as_str()) {
                        out.insert(name.to_string(), "(declared binding)".to_string());
                    }
                }
            }
        }
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
