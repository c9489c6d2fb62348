//! The sweep: `delete_expired` removes only expired records, within its limit, compare-and-delete.

use std::sync::Arc;

use session_core::{Record, SessionStore};

use super::{must_create, must_load};
use crate::harness::{Ctx, HOUR, StoreFactory};

/// `delete_expired` removes only expired records, at most `limit` per call,
/// and returns how many it removed (0 is allowed where the server expires
/// records by itself).
pub async fn delete_expired_removes_only_expired_records_and_respects_limit<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let expired: Vec<Record> = (0..5).map(|_| ctx.record(HOUR)).collect();
    let live: Vec<Record> = (0..3).map(|_| ctx.record(3 * HOUR)).collect();
    for r in expired.iter().chain(&live) {
        must_create(store, r, now).await;
    }
    let at = now + 2 * HOUR;
    let mut total = 0;
    for _ in 0..4 {
        let n = store
            .delete_expired(at, 2)
            .await
            .unwrap_or_else(|e| panic!("delete_expired failed: {e}"));
        assert!(n <= 2, "delete_expired(limit 2) removed {n}");
        total += n;
    }
    if ctx.factory.expires_by_itself() {
        assert!(total <= 5);
    } else {
        assert_eq!(total, 5, "the sweep left expired records behind");
        for r in &expired {
            assert_eq!(
                store.load(&r.key, now).await.ok(),
                Some(None),
                "an expired record was not removed"
            );
        }
    }
    assert_eq!(store.delete_expired(at, 0).await.ok(), Some(0));
    for r in &live {
        assert_eq!(must_load(store, &r.key, at).await, *r);
    }
}

/// The sweep judges expiry at its own `now`: a session renewed before the
/// sweep survives it.
pub async fn delete_expired_never_removes_a_renewed_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.touch(&r.key, now + 3 * HOUR, now).await.ok(), Some(true));
    let at = now + 2 * HOUR;
    assert_eq!(ctx.store.delete_expired(at, 100).await.ok(), Some(0));
    assert_eq!(must_load(&*ctx.store, &r.key, at).await.expires_at, now + 3 * HOUR);
}
