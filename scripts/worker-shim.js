// The worker's entry module, bundled by scripts/build.sh with the glue that
// wasm-bindgen generates from the crate (./index.js, beside it at build time).
// Adapted from the shim `worker-build` 0.8.7 writes in its default mode
// (src/js/shim.js of workers-rs, Cloudflare, Apache License 2.0). Changed:
// what its generate_handlers and add_export_wrappers add for this crate is
// written out instead of generated (the crate has one handler,
// `#[event(fetch)]`, and one Durable Object class, `OneTime`, in src/edge/;
// scripts/build.sh stops if wasm-bindgen exports anything else, so a new one
// cannot go missing silently); the `worker` crate's own classes
// (ContainerStartupOptions, MinifyConfig, R2Range: no entry points) are not
// re-exported; the comments.
//
// Why a shim at all: the release profile has panic = "abort", so a Rust panic
// ends in a wasm trap (`unreachable`), and the instance's memory is then in an
// unknown state. The glue, built with --experimental-reset-state-function and
// --force-enable-abort-handler, can replace the instance
// (`__wbg_reset_state`); this module makes sure that happens before the next
// call after a trap, and that objects made by the old instance (the
// Durable Object, the entrypoint) are made again, so one bad request does not
// poison every later request of the isolate.
import { WorkerEntrypoint } from "cloudflare:workers";
import * as exports from "./index.js";

Error.stackTraceLimit = 100;
// { criticalError, instanceId }: shared with the `worker` crate (its init.rs),
// which sets criticalError from its panic hook and bumps instanceId each time
// an instance starts.
const initState = exports.__worker_init_state();

// Before each call into wasm: after a trap, a fresh instance.
function checkReinitialize() {
  if (initState.criticalError) {
    console.log("Reinitializing Wasm application");
    exports.__wbg_reset_state();
    initState.criticalError = false;
    initState.instanceId++;
  }
}

// A trap surfaces as a WebAssembly.RuntimeError, thrown to the caller or, from
// a promise nobody awaits, as an uncaught error of the isolate.
addEventListener("error", (e) => {
  handleMaybeCritical(e.error);
});

function handleMaybeCritical(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    console.error("Critical", e);
    initState.criticalError = true;
  }
}

// The default export: the `#[event(fetch)]` handler as a WorkerEntrypoint
// (wasm-bindgen exports it as fetch(req, env, ctx)).
class Entrypoint extends WorkerEntrypoint {
  fetch(request) {
    return exports.fetch.call(this, request, this.env, this.ctx);
  }
}

// Every trap of the instance proxy below goes to the object currently made
// from the live wasm instance.
const instanceProxyHooks = {
  set: (target, prop, value, receiver) => Reflect.set(target.instance, prop, value, receiver),
  has: (target, prop) => Reflect.has(target.instance, prop),
  deleteProperty: (target, prop) => Reflect.deleteProperty(target.instance, prop),
  apply: (target, thisArg, args) => Reflect.apply(target.instance, thisArg, args),
  construct: (target, args, newTarget) => Reflect.construct(target.instance, args, newTarget),
  getPrototypeOf: (target) => Reflect.getPrototypeOf(target.instance),
  setPrototypeOf: (target, proto) => Reflect.setPrototypeOf(target.instance, proto),
  isExtensible: (target) => Reflect.isExtensible(target.instance),
  preventExtensions: (target) => Reflect.preventExtensions(target.instance),
  getOwnPropertyDescriptor: (target, prop) => Reflect.getOwnPropertyDescriptor(target.instance, prop),
  defineProperty: (target, prop, descriptor) => Reflect.defineProperty(target.instance, prop, descriptor),
  ownKeys: (target) => Reflect.ownKeys(target.instance),
};

// Wraps an exported class: each object the runtime constructs is a proxy that
// remembers how it was made, makes itself again when the wasm instance was
// replaced (the old object's pointer is into the old memory), reinitializes
// before every method call after a trap, and flags a trap a method throws.
const classProxyHooks = {
  construct(ctor, args, newTarget) {
    try {
      checkReinitialize();
      const instance = {
        instance: Reflect.construct(ctor, args, newTarget),
        instanceId: initState.instanceId,
        ctor,
        args,
        newTarget,
      };
      return new Proxy(instance, {
        ...instanceProxyHooks,
        get(target, prop, receiver) {
          if (target.instanceId !== initState.instanceId) {
            target.instance = Reflect.construct(target.ctor, target.args, target.newTarget);
            target.instanceId = initState.instanceId;
          }
          const original = Reflect.get(target.instance, prop, receiver);
          if (typeof original !== "function") return original;
          if (original.constructor === Function) {
            return new Proxy(original, {
              apply(target, thisArg, argArray) {
                checkReinitialize();
                try {
                  return target.apply(thisArg, argArray);
                } catch (e) {
                  handleMaybeCritical(e);
                  throw e;
                }
              },
            });
          }
          return new Proxy(original, {
            async apply(target, thisArg, argArray) {
              checkReinitialize();
              try {
                return await target.apply(thisArg, argArray);
              } catch (e) {
                handleMaybeCritical(e);
                throw e;
              }
            },
          });
        },
      });
    } catch (e) {
      initState.criticalError = true;
      throw e;
    }
  },
};

// The Durable Object class of wrangler.toml (`#[durable_object]` in
// src/edge/one_time.rs).
export const OneTime = new Proxy(exports.OneTime, classProxyHooks);

export default new Proxy(Entrypoint, classProxyHooks);
