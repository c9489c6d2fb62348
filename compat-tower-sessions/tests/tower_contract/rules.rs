//! tower-sessions' store contract, as its session middleware relies on it,
//! plus what this adapter promises beyond it. Written once, expanded for
//! every tower-sessions version whose feature is on, and run on every
//! backend.

/// The rules for the tower-sessions core crate `$core`, in a module
/// `$version`, run on every backend.
macro_rules! rules {
    ($version:ident, $core:ident) => {
        mod $version {
            use std::collections::HashMap;
            use std::sync::Arc;
            use std::time::Duration;

            use compat_tower_sessions::store_key_of;
            use serde_json::json;
            use session_core::{Bytes, Overwrite};
            use time::{OffsetDateTime, UtcOffset};
            use $core::session::{Id, Record};
            use $core::session_store::{Error, ExpiredDeletion};
            use $core::{Session, SessionStore as _};

            use session_tower::testkit::Calls;
            use crate::harness::Harness;

            const HOUR_MS: i64 = 3_600_000;

            /// A record tower would hand its store: a fresh id, `n` under
            /// "n", a marker string, and `expiry`.
            fn record(n: u64, expiry: OffsetDateTime) -> Record {
                let mut data = HashMap::new();
                data.insert("n".to_owned(), json!(n));
                data.insert("marker".to_owned(), json!(format!("at-rest-marker-{n}")));
                data.insert("nested".to_owned(), json!({"list": [1, "two", null, 4.5], "ok": true}));
                Record {
                    id: Id::default(),
                    data,
                    expiry_date: expiry,
                }
            }

            async fn load(h: &Harness, id: &Id) -> Option<Record> {
                h.tower.load(id).await.expect("load succeeds")
            }

            async fn created(h: &Harness, n: u64, expiry: OffsetDateTime) -> Record {
                let mut r = record(n, expiry);
                h.tower.create(&mut r).await.expect("create succeeds");
                r
            }

            pub async fn create_then_load_returns_the_record_exactly(h: Arc<Harness>) {
                // Nanoseconds and a non-UTC offset: tower's expiry comes back
                // as it was, not rounded to our milliseconds.
                let offset = UtcOffset::from_hms(-3, -30, 0).expect("valid offset");
                let r = created(&h, 1, h.at(HOUR_MS, 123_456).to_offset(offset)).await;
                let back = load(&h, &r.id).await.expect("live");
                assert_eq!(back, r);
                assert_eq!(back.expiry_date.nanosecond(), r.expiry_date.nanosecond());
                assert_eq!(back.expiry_date.offset(), offset);
            }

            pub async fn load_after_save_returns_what_was_saved(h: Arc<Harness>) {
                let mut r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                r.data.insert("n".to_owned(), json!(2));
                r.data.remove("nested");
                r.expiry_date = h.at(2 * HOUR_MS, 999_999);
                h.tower.save(&r).await.expect("save succeeds");
                assert_eq!(load(&h, &r.id).await, Some(r));
            }

            pub async fn an_unknown_id_loads_nothing_and_deletes_quietly(h: Arc<Harness>) {
                let id = Id::default();
                assert_eq!(load(&h, &id).await, None);
                h.tower.delete(&id).await.expect("deleting an unknown id is not an error");
                assert_eq!(load(&h, &id).await, None);
            }

            pub async fn a_session_is_not_loaded_from_its_expiry_on(h: Arc<Harness>) {
                let r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                h.clock.advance(Duration::from_millis(HOUR_MS as u64 - 1));
                assert_eq!(load(&h, &r.id).await, Some(r.clone()), "live a millisecond before");
                h.clock.advance(Duration::from_millis(1));
                assert_eq!(load(&h, &r.id).await, None, "expired at its expiry");
            }

            pub async fn no_session_outlives_tower_s_deadline_by_a_fraction_of_a_millisecond(h: Arc<Harness>) {
                // Expiry 0.9 ms after a millisecond: at that millisecond
                // tower's deadline is not past yet, a millisecond later it
                // is, and by then the store must not return it.
                let r = created(&h, 1, h.at(HOUR_MS, 900_000)).await;
                h.clock.advance(Duration::from_millis(HOUR_MS as u64 - 1));
                assert!(load(&h, &r.id).await.is_some());
                h.clock.advance(Duration::from_millis(1));
                assert_eq!(load(&h, &r.id).await, None, "rounded down, never up");
                h.clock.advance(Duration::from_millis(1));
                assert_eq!(load(&h, &r.id).await, None);
            }

            pub async fn a_save_with_a_past_expiry_ends_the_session(h: Arc<Harness>) {
                let mut r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                r.expiry_date = h.at(-1, 0);
                h.tower.save(&r).await.expect("save succeeds");
                assert_eq!(load(&h, &r.id).await, None);
            }

            pub async fn delete_ends_the_session(h: Arc<Harness>) {
                let r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                let other = created(&h, 2, h.at(HOUR_MS, 0)).await;
                h.tower.delete(&r.id).await.expect("delete succeeds");
                assert_eq!(load(&h, &r.id).await, None);
                assert_eq!(load(&h, &other.id).await, Some(other), "only that session");
            }

            pub async fn a_save_after_delete_stays_deleted(h: Arc<Harness>) {
                // A request loaded the session, another logged it out, the
                // first saves at its end.
                let mut r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                h.tower.delete(&r.id).await.expect("delete succeeds");
                r.data.insert("n".to_owned(), json!(2));
                h.tower.save(&r).await.expect("a save of an ended session is not an error");
                assert_eq!(load(&h, &r.id).await, None);
                assert!(
                    h.inner().load(&store_key_of(r.id.0), h.now()).await.expect("load").is_none(),
                    "nothing was written below tower's view either"
                );
            }

            pub async fn a_save_after_expiry_never_revives_the_session(h: Arc<Harness>) {
                let mut r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                h.clock.advance(Duration::from_millis(HOUR_MS as u64));
                r.expiry_date = h.at(HOUR_MS, 0);
                h.tower.save(&r).await.expect("a save of an ended session is not an error");
                assert_eq!(load(&h, &r.id).await, None);
            }

            pub async fn a_save_of_a_session_never_created_writes_nothing(h: Arc<Harness>) {
                let r = record(1, h.at(HOUR_MS, 0));
                h.tower.save(&r).await.expect("not an error");
                assert_eq!(load(&h, &r.id).await, None);
            }

            pub async fn create_over_a_live_id_picks_a_new_id_and_keeps_the_other(h: Arc<Harness>) {
                let first = created(&h, 1, h.at(HOUR_MS, 0)).await;
                let mut second = record(2, h.at(2 * HOUR_MS, 0));
                second.id = first.id;
                h.tower.create(&mut second).await.expect("create succeeds");
                assert_ne!(second.id, first.id, "a new id was picked");
                assert_eq!(load(&h, &first.id).await, Some(first), "the live session is untouched");
                assert_eq!(load(&h, &second.id).await, Some(second));
            }

            pub async fn create_over_an_expired_id_takes_it(h: Arc<Harness>) {
                let first = created(&h, 1, h.at(HOUR_MS, 0)).await;
                h.clock.advance(Duration::from_millis(HOUR_MS as u64));
                let mut second = record(2, h.at(HOUR_MS, 0));
                second.id = first.id;
                h.tower.create(&mut second).await.expect("create succeeds");
                assert_eq!(second.id, first.id);
                assert_eq!(load(&h, &first.id).await, Some(second));
            }

            pub async fn the_session_middleware_s_cycle_id_moves_the_data_and_ends_the_old_id(h: Arc<Harness>) {
                let store = Arc::new(h.tower.clone());
                let session = Session::new(None, Arc::clone(&store), None);
                session.insert("user", "ada").await.expect("insert");
                session.save().await.expect("save creates");
                let old = session.id().expect("an id after the first save");

                // The next request: the cookie's id, then a login.
                let session = Session::new(Some(old), Arc::clone(&store), None);
                session.cycle_id().await.expect("cycle_id");
                session.insert("logged_in", true).await.expect("insert");
                session.save().await.expect("save creates the new id");
                let new = session.id().expect("an id");
                assert_ne!(new, old);

                assert_eq!(load(&h, &old).await, None, "the old id is gone");
                let later = Session::new(Some(new), Arc::clone(&store), None);
                assert_eq!(later.get::<String>("user").await.expect("get").as_deref(), Some("ada"));
                assert_eq!(later.get::<bool>("logged_in").await.expect("get"), Some(true));

                // Logging out: flush deletes it.
                later.flush().await.expect("flush");
                assert_eq!(load(&h, &new).await, None);
            }

            pub async fn concurrent_saves_of_one_session_all_succeed_and_one_of_them_is_kept(h: Arc<Harness>) {
                let r = created(&h, 0, h.at(HOUR_MS, 0)).await;
                let mut saves = Vec::new();
                let mut written = Vec::new();
                for n in 1..=16 {
                    let mut mine = record(n, h.at(HOUR_MS + n as i64, n.into()));
                    mine.id = r.id;
                    written.push(mine.clone());
                    let h = Arc::clone(&h);
                    saves.push(tokio::spawn(async move { h.tower.save(&mine).await }));
                }
                for save in saves {
                    save.await.expect("the save task").expect("every save succeeds");
                }
                let kept = load(&h, &r.id).await.expect("still live");
                assert!(
                    written.contains(&kept),
                    "the kept record is one whole save, data and expiry together: {kept:?}"
                );
            }

            pub async fn a_save_racing_a_delete_never_resurrects(h: Arc<Harness>) {
                for round in 0..20 {
                    let mut r = created(&h, round, h.at(HOUR_MS, 0)).await;
                    r.data.insert("n".to_owned(), json!(round + 100));
                    let (a, b) = (Arc::clone(&h), Arc::clone(&h));
                    let id = r.id;
                    let save = tokio::spawn(async move { a.tower.save(&r).await });
                    let delete = tokio::spawn(async move { b.tower.delete(&id).await });
                    save.await.expect("the save task").expect("save succeeds");
                    delete.await.expect("the delete task").expect("delete succeeds");
                    assert_eq!(load(&h, &id).await, None, "round {round}: deleted whatever the order");
                }
            }

            pub async fn every_operation_is_one_call_of_the_store(h: Arc<Harness>) {
                let _ = h.take_calls();
                let mut r = record(1, h.at(HOUR_MS, 0));
                h.tower.create(&mut r).await.expect("create");
                assert_eq!(h.take_calls(), Calls { create: 1, ..Calls::default() });
                h.tower.save(&r).await.expect("save");
                assert_eq!(h.take_calls(), Calls { overwrite: 1, ..Calls::default() });
                load(&h, &r.id).await.expect("live");
                assert_eq!(h.take_calls(), Calls { load: 1, ..Calls::default() });
                h.tower.delete(&r.id).await.expect("delete");
                assert_eq!(h.take_calls(), Calls { delete: 1, ..Calls::default() });
                // Also when there is nothing to do.
                h.tower.save(&r).await.expect("save");
                assert_eq!(h.take_calls(), Calls { overwrite: 1, ..Calls::default() });
                assert_eq!(load(&h, &r.id).await, None);
                assert_eq!(h.take_calls(), Calls { load: 1, ..Calls::default() });
            }

            /// Counted between the store and its server, after one warm-up
            /// of each operation (a fresh server loads Redis's scripts
            /// then: one more round trip, once per script and server).
            pub async fn every_operation_is_one_round_trip_on_the_wire(h: Arc<Harness>) {
                let wire = h.wire().expect("networked backends run behind the counting proxy");
                let mut warm = record(0, h.at(HOUR_MS, 0));
                h.tower.create(&mut warm).await.expect("create");
                h.tower.save(&warm).await.expect("save");
                load(&h, &warm.id).await.expect("live");
                h.tower.delete(&warm.id).await.expect("delete");
                h.tower.save(&warm).await.expect("save of an ended session");

                wire.take();
                let mut r = record(1, h.at(HOUR_MS, 0));
                h.tower.create(&mut r).await.expect("create");
                assert_eq!(wire.take(), 1, "create");
                h.tower.save(&r).await.expect("save");
                assert_eq!(wire.take(), 1, "save");
                load(&h, &r.id).await.expect("live");
                assert_eq!(wire.take(), 1, "load");
                h.tower.delete(&r.id).await.expect("delete");
                assert_eq!(wire.take(), 1, "delete");
                h.tower.save(&r).await.expect("save of an ended session");
                assert_eq!(wire.take(), 1, "save of an ended session");
                assert_eq!(load(&h, &r.id).await, None);
                assert_eq!(wire.take(), 1, "load of an ended session");
            }

            pub async fn ids_are_hashed_at_rest(h: Arc<Harness>) {
                let r = created(&h, 7, h.at(HOUR_MS, 0)).await;
                let stored = h
                    .inner()
                    .load(&store_key_of(r.id.0), h.now())
                    .await
                    .expect("load")
                    .expect("kept under the hash of the id");
                let (text, bytes) = (r.id.to_string(), r.id.0.to_le_bytes());
                let holds = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
                assert!(!holds(&stored.data, text.as_bytes()) && !holds(&stored.data, &bytes));
                if let Some(raw) = h.bytes_at_rest().await {
                    assert!(holds(&raw, b"at-rest-marker-7"), "the dump sees the session's data");
                    assert!(!holds(&raw, text.as_bytes()), "no cookie text at rest");
                    assert!(!holds(&raw, &bytes), "no id bytes at rest");
                }
            }

            pub async fn damaged_stored_bytes_give_a_decode_error_and_logout_still_works(h: Arc<Harness>) {
                let r = created(&h, 1, h.at(HOUR_MS, 0)).await;
                let key = store_key_of(r.id.0);
                for damage in [&b""[..], b"\x74short", conformance::FOREIGN_DATA, b"\x74\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0{"] {
                    let write = Overwrite {
                        data: Bytes::copy_from_slice(damage),
                        expires_at: h.now() + Duration::from_secs(3600),
                        owner: None,
                    };
                    h.inner().overwrite(&key, write, h.now()).await.expect("damage written");
                    match h.tower.load(&r.id).await {
                        Err(Error::Decode(message)) => {
                            assert!(!message.contains(&r.id.to_string()), "no id in errors: {message}")
                        }
                        other => panic!("damaged bytes {damage:?} gave {other:?}"),
                    }
                }
                h.tower.delete(&r.id).await.expect("a damaged session can still be ended");
                assert_eq!(load(&h, &r.id).await, None);
            }

            pub async fn delete_expired_removes_expired_sessions_only(h: Arc<Harness>) {
                let short: Vec<_> = created_many(&h, 3, HOUR_MS).await;
                let long = created(&h, 9, h.at(3 * HOUR_MS, 0)).await;
                h.clock.advance(Duration::from_millis(2 * HOUR_MS as u64));
                let _ = h.take_calls();
                h.tower.delete_expired().await.expect("delete_expired");
                assert_eq!(h.take_calls(), Calls { delete_expired: 1, ..Calls::default() }, "one batch holds them all");
                assert_eq!(load(&h, &long.id).await, Some(long), "a live session stays");
                if !h.backend.expires_by_itself() {
                    // Physically gone: not even a load from before the
                    // expiry finds them.
                    let before = h.now() - Duration::from_millis(2 * HOUR_MS as u64);
                    for r in short {
                        let key = store_key_of(r.id.0);
                        assert_eq!(h.inner().load(&key, before).await.expect("load"), None);
                    }
                }
            }

            async fn created_many(h: &Harness, n: u64, ttl_ms: i64) -> Vec<Record> {
                let mut out = Vec::new();
                for i in 0..n {
                    out.push(created(h, i, h.at(ttl_ms, 0)).await);
                }
                out
            }

            crate::for_every_backend!([
                create_then_load_returns_the_record_exactly,
                load_after_save_returns_what_was_saved,
                an_unknown_id_loads_nothing_and_deletes_quietly,
                a_session_is_not_loaded_from_its_expiry_on,
                no_session_outlives_tower_s_deadline_by_a_fraction_of_a_millisecond,
                a_save_with_a_past_expiry_ends_the_session,
                delete_ends_the_session,
                a_save_after_delete_stays_deleted,
                a_save_after_expiry_never_revives_the_session,
                a_save_of_a_session_never_created_writes_nothing,
                create_over_a_live_id_picks_a_new_id_and_keeps_the_other,
                create_over_an_expired_id_takes_it,
                the_session_middleware_s_cycle_id_moves_the_data_and_ends_the_old_id,
                concurrent_saves_of_one_session_all_succeed_and_one_of_them_is_kept,
                a_save_racing_a_delete_never_resurrects,
                every_operation_is_one_call_of_the_store,
                ids_are_hashed_at_rest,
                damaged_stored_bytes_give_a_decode_error_and_logout_still_works,
                delete_expired_removes_expired_sessions_only,
            ], networked: [every_operation_is_one_round_trip_on_the_wire]);
        }
    };
}

/// One `#[test]` per rule and backend, `<version>::<backend>::<rule>`: the
/// first list on every backend, the second on the networked ones too.
#[macro_export]
macro_rules! for_every_backend {
    ([$($rule:ident),* $(,)?], networked: [$($net:ident),* $(,)?]) => {
        $crate::for_every_backend!(@tests memory, Memory, [$($rule),*]);
        $crate::for_every_backend!(@tests sled, Sled, [$($rule),*]);
        $crate::for_every_backend!(@tests redis, Redis, [$($rule,)* $($net),*]);
        // Networked, but its round trips go to every master: counted by the
        // store's own cluster round-trip test instead.
        $crate::for_every_backend!(@tests redis_cluster, RedisCluster, [$($rule),*]);
        $crate::for_every_backend!(@tests postgres, Postgres, [$($rule,)* $($net),*]);
    };
    (@tests $module:ident, $backend:ident, [$($rule:ident),*]) => {
        mod $module {
            $(
                #[test]
                fn $rule() {
                    $crate::harness::run($crate::backends::Backend::$backend, super::$rule);
                }
            )*
        }
    };
}
