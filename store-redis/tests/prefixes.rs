//! Two stores whose prefixes extend one another never see each other's
//! keys: not `a` and `a:b`, and not `a` and `ao:`, where the old layout's
//! names (`<prefix>{hex}`, `<prefix>owner:{owner}`) could meet.

mod support;

use conformance::fixtures::{self, HOUR};
use session_core::{Record, SessionStore, StoreKey, Timestamp};
use store_redis::RedisStore;

async fn store(prefix: &str) -> Option<RedisStore> {
    let prefix = prefix.to_owned();
    support::shared_store_with(|b| b.prefix(prefix)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_under_nested_prefixes_never_see_each_others_keys() {
    let base = support::unique_prefix();
    // The owner is 64 hex digits, so an index name could look like a
    // session name of a prefix that ends in the index's marker.
    let key = conformance::fresh_key();
    let owner = key.to_hex();
    let now = Timestamp::now();
    for extension in [":b", "o:", "s:", "owner:", "d:", "o", "s"] {
        let Some(short) = store(&base).await else {
            return;
        };
        let Some(long) = store(&format!("{base}{extension}")).await else {
            return;
        };
        let record = |key: StoreKey| Record {
            owner: Some(owner.clone()),
            ..fixtures::record(key, now, HOUR)
        };
        short
            .create(record(key), now)
            .await
            .expect("create under the short prefix");
        long.create(record(key), now)
            .await
            .expect("create under the long prefix: no clash");
        for (store, other) in [(&short, &long), (&long, &short)] {
            assert_eq!(
                store.list_by_owner(&owner, now).await.expect("list").len(),
                1,
                "{extension}"
            );
            assert!(store.delete(&key, now).await.expect("delete"), "{extension}");
            assert!(other.load(&key, now).await.expect("load").is_some(), "{extension}");
            other.create(record(key), now).await.ok();
            store.create(record(key), now).await.expect("create again");
        }
        assert_eq!(short.delete_by_owner(&owner, now).await.expect("delete_by_owner"), 1);
        assert!(long.load(&key, now).await.expect("load").is_some(), "{extension}");
        support::delete_prefix(long.prefix()).await;
        support::delete_prefix(short.prefix()).await;
    }
}
