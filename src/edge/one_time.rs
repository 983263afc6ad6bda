//! The Durable Object behind `Io::use_once`: one object per one-time key
//! (named by the key's digest), so the check and the record happen inside
//! one object, atomically (its input gate holds other events while its
//! storage is read and written), and the same everywhere. An alarm clears
//! the object once the key's lifetime has passed.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

#[durable_object]
pub struct OneTime {
    state: State,
}

const USED: &str = "used";

impl DurableObject for OneTime {
    fn new(state: State, _env: Env) -> Self {
        OneTime { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let ttl = req
            .url()?
            .query_pairs()
            .find(|(k, _)| k == "ttl")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(600)
            .clamp(60, 86_400);
        let storage = self.state.storage();
        if storage.get::<u64>(USED).await?.is_some() {
            return Response::ok("replay");
        }
        let now_ms = worker::Date::now().as_millis();
        storage.put(USED, now_ms).await?;
        // Offset in milliseconds from now.
        let offset_ms = i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX);
        storage.set_alarm(offset_ms).await?;
        Response::ok("first")
    }

    async fn alarm(&self) -> Result<Response> {
        self.state.storage().delete_all().await?;
        Response::ok("cleared")
    }
}
