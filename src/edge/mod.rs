//! wasm32 only: the Worker entry point. It converts between `worker` types
//! and the core's values and performs the I/O the core asks for; it decides
//! nothing itself.

mod convert;
mod io;
mod one_time;
mod proxy;

use crate::app::{self, App, Outcome};
use crate::bindings::{Bindings, ConfigError};
use crate::config::OneTimeStore;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{event, Context, Env, Request, Response, Result};

/// Bindings read from the Worker environment: vars and secrets are both
/// strings; KV namespaces and Durable Objects are asked for by name.
struct EnvBindings<'a>(&'a Env);

impl Bindings for EnvBindings<'_> {
    fn get(&self, name: &str) -> Option<String> {
        let v = self
            .0
            .secret(name)
            .map(|s| s.to_string())
            .or_else(|_| self.0.var(name).map(|v| v.to_string()))
            .ok()?;
        (!v.trim().is_empty()).then_some(v)
    }

    fn has_binding(&self, name: &str) -> bool {
        self.0.kv(name).is_ok() || self.0.durable_object(name).is_ok() || self.get(name).is_some()
    }
}

type Parsed = Rc<std::result::Result<App, Vec<ConfigError>>>;

thread_local! {
    // Parsed once per isolate; the caches inside live as long as the isolate.
    static APP: RefCell<Option<Parsed>> = const { RefCell::new(None) };
}

fn app(env: &Env) -> Parsed {
    APP.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| Rc::new(App::from_bindings(&EnvBindings(env))))
            .clone()
    })
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let app = app(&env);
    let store = match app.as_ref() {
        Ok(a) => a.config.one_time,
        Err(_) => OneTimeStore::DurableObject,
    };
    let io = io::WorkerIo::new(&env, store);
    let base = app
        .as_ref()
        .as_ref()
        .map(|a| a.config.base_path.as_str())
        .unwrap_or("/");
    let (incoming, original) = match convert::incoming(req, base).await {
        Ok(pair) => pair,
        Err(f) => {
            return convert::response(app::respond::fail(&io, &f.headers, &f.path, &f.failure))
        }
    };
    let app = match app.as_ref() {
        Ok(a) => a,
        Err(errors) => return convert::response(app::misconfigured(&io, &incoming, errors)),
    };
    match app::handle(app, incoming, &io).await {
        Outcome::Respond(r) => convert::response(r),
        Outcome::Proxy(plan) => proxy::forward(&original, plan, &io).await,
    }
}
