//! Payloads: data is opaque bytes of any size.

use std::sync::Arc;

use session_core::{Bytes, SessionStore, Update};

use super::{must_create, must_load};
use crate::harness::{Ctx, HOUR, StoreFactory};

/// Data is opaque bytes: every byte value and a 256 KiB payload round-trip
/// exactly, as does empty data.
pub async fn data_is_stored_as_opaque_bytes_of_any_size<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let big: Vec<u8> = (0..256 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for data in [
        Bytes::new(),
        Bytes::from((0..=255u8).collect::<Vec<_>>()),
        Bytes::from(big),
    ] {
        let mut r = ctx.record(HOUR);
        r.data = data;
        must_create(&*ctx.store, &r, now).await;
        assert_eq!(must_load(&*ctx.store, &r.key, now).await, r);
        let u = Update {
            expected_version: 1,
            data: r.data.slice(..r.data.len() / 2),
            expires_at: r.expires_at,
            owner: None,
        };
        assert_eq!(ctx.store.update(&r.key, u.clone(), now).await.ok(), Some(2));
        assert_eq!(must_load(&*ctx.store, &r.key, now).await.data, u.data);
    }
}
