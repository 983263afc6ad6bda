//! Replays the fuzz corpus and every committed crash reproducer through the
//! fuzz targets' own invariants (`fuzz/src/checks/`, included by path so
//! this builds without libFuzzer). A reproducer under
//! `fuzz/artifacts/<target>/` stays here for good: once its bug is fixed it
//! guards the fix.
//!
//! Run the fuzzers themselves with `bash scripts/fuzz.sh`.

#[path = "../fuzz/src/checks/mod.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every input of `target` under `fuzz/<kind>/<target>/`, each replayed
/// alone so a failure names its file.
fn replay(target: &str, kind: &str) -> usize {
    let run = checks::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .expect("a target of that name");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut failed = Vec::new();
    let inputs = files(&dir);
    for path in &inputs {
        let data = std::fs::read(path).expect("readable input");
        let result = std::panic::catch_unwind(|| run(&data));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{}: {msg}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} failing:\n{}",
        failed.len(),
        failed.join("\n")
    );
    inputs.len()
}

macro_rules! target_tests {
    ($($name:ident),* $(,)?) => {
        mod seeds {
            $( #[test] fn $name() { assert!(super::replay(stringify!($name), "corpus") > 0, "no seeds"); } )*
        }
        mod artifacts {
            $( #[test] fn $name() { super::replay(stringify!($name), "artifacts"); } )*
        }
    };
}

target_tests!(
    bindings,
    request_cookies,
    session_cookie,
    flow_cookie,
    jwt,
    jwks,
    discovery,
    token_response,
    userinfo,
    form,
    redirect_targets,
    proxy_plan,
    request,
    lti_services,
    session_end,
);

#[test]
fn every_target_has_a_test_and_a_fuzz_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, _) in checks::TARGETS {
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs"
        );
    }
    assert_eq!(
        files(&root.join("fuzz_targets")).len(),
        checks::TARGETS.len()
    );
}

/// `HUBGATE_WRITE_SEEDS=1 cargo test --test fuzz_regressions write_seeds`
/// rewrites the generated seeds (those carrying genuine tokens).
#[test]
fn write_seeds() {
    let generated = checks::seeds::generated();
    assert!(!generated.is_empty());
    if std::env::var_os("HUBGATE_WRITE_SEEDS").is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, name, data) in generated {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), data).expect("seed written");
    }
}
