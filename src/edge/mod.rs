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
        let raw = js_sys::Reflect::get(self.0, &wasm_bindgen::JsValue::from_str(name)).ok()?;
        let v = var_text(&raw)?;
        (!v.trim().is_empty()).then_some(v)
    }

    fn has_binding(&self, name: &str) -> bool {
        self.0.kv(name).is_ok() || self.0.durable_object(name).is_ok() || self.get(name).is_some()
    }
}

/// A var as text, as `hubgate-check` reads `wrangler.toml`: a string as
/// is; a boolean, number, array or plain object (Workers hand non-string
/// `[vars]` over as JSON values) as its JSON text. Other bindings (KV, a
/// Durable Object, a service) are no text.
fn var_text(raw: &wasm_bindgen::JsValue) -> Option<String> {
    if let Some(s) = raw.as_string() {
        return Some(s);
    }
    let plain_object = || {
        let proto = js_sys::Object::get_prototype_of(raw);
        proto.is_object() && js_sys::Object::get_prototype_of(&proto).is_null()
    };
    let json = raw.as_bool().is_some()
        || raw.as_f64().is_some()
        || js_sys::Array::is_array(raw)
        || (raw.is_object() && plain_object());
    if !json {
        return None;
    }
    js_sys::JSON::stringify(raw).ok()?.as_string()
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
