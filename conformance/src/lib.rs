//! # conformance: the session-store contract, executable
//!
//! Every [`SessionStore`](session_core::SessionStore) in this workspace runs
//! this suite against a real server; a third-party backend runs it the same
//! way to prove it behaves exactly like ours. It contains:
//!
//! - one example test per rule of the contract (the documentation of
//!   [`SessionStore`](session_core::SessionStore) and of
//!   [`SessionManager`](session_core::SessionManager)), named after the rule
//!   ([`rules`], one file per part of the contract, and [`rules::manager`]);
//! - a model-based test: random operation sequences with clock advances,
//!   compared step by step with a pure [`Model`] of the contract
//!   ([`rules::state_machine`]);
//! - bad-input tests: malformed ids, oversized data, corrupted stored bytes;
//! - a concurrent test: many tasks race on a few keys, every history is
//!   recorded ([`checker::history`]) and checked linearizable against the
//!   same model ([`checker::linearizability`], [`rules::concurrent`]), plus
//!   race tests named after the lesson each keeps ([`rules::races`]).
//!
//! It is not a benchmark and not a mock: give it a factory of real stores.
//!
//! ## Running it for a backend
//!
//! Implement [`StoreFactory`] (fresh isolated stores; optionally a way to
//! damage a stored record below the contract, and a clean-up) and invoke
//! [`suite!`] in an integration test file; every rule becomes an ordinary
//! `#[test]`:
//!
//! ```
//! use conformance::{StoreFactory, Unavailable};
//! use session_core::async_trait;
//! use store_memory::MemoryStore;
//!
//! struct Memory;
//!
//! #[async_trait]
//! impl StoreFactory for Memory {
//!     type Store = MemoryStore;
//!     fn name(&self) -> &'static str { "memory" }
//!     async fn make(&self) -> Result<MemoryStore, Unavailable> { Ok(MemoryStore::new()) }
//! }
//!
//! conformance::suite!(Memory);
//! # fn main() {}
//! ```
//!
//! A store that splits its records into shards (its
//! [`shard_of_owner`](session_core::SessionStore::shard_of_owner) returns
//! `Some`, as a Redis Cluster store's does) runs the same suite: every rule
//! mints the keys of owned records into their owner's shard, as the manager
//! does, and checks the `WrongShard` refusals where a rule moves a key to an
//! owner of another shard. If such a store moves a session between shards
//! in two steps, its factory says so with
//! [`StoreFactory::atomic_cross_shard_rotate`]: the one declared difference
//! between backends.
//!
//! A factory whose server is unreachable returns [`Unavailable`]: the test
//! prints a loud skip message and passes, unless `SESSIONS_REQUIRE_SERVICES=1`
//! (CI), where it fails. `SESSIONS_PROPTEST_CASES` changes the number of
//! state-machine cases (default 256); `SESSIONS_LINEARIZABILITY_ROUNDS` the
//! number of rounds of the concurrent test (default 5).

pub mod checker;
pub mod fixtures;
mod harness;
pub mod rules;

pub use checker::model::{Call, ErrorKind, Model, Op, Outcome};
pub use harness::{
    Ctx, FOREIGN_DATA, HOUR, REQUIRE_SERVICES_ENV, StoreFactory, Unavailable, announce_skip, fresh_key, run,
    services_required,
};

/// Expands to one `#[test]` per rule of the contract, each running against a
/// fresh store from the factory expression (evaluated once per test).
#[macro_export]
macro_rules! suite {
    ($factory:expr) => {
        $crate::suite!(@tests $factory;
            records::create_then_load_returns_the_record_at_version_1,
            records::update_increments_the_version_by_exactly_one,
            records::update_with_a_stale_version_gives_conflict_with_the_current_version,
            records::overwrite_writes_whatever_the_version_and_increments_it,
            records::overwrite_never_brings_a_session_back,
            records::touch_does_not_change_the_version,
            liveness::a_session_is_expired_exactly_at_expires_at,
            liveness::an_expired_session_is_absent_for_every_operation,
            liveness::create_over_an_expired_record_replaces_it,
            liveness::create_over_a_live_record_fails_and_changes_nothing,
            liveness::update_of_an_expired_session_gives_not_found_and_writes_nothing,
            liveness::update_of_a_deleted_session_gives_not_found,
            liveness::touch_extends_a_live_session,
            liveness::touch_never_shortens_a_session,
            liveness::touch_never_revives_an_expired_session,
            liveness::a_deleted_session_stays_deleted,
            rotation::rotate_moves_data_owner_created_at_and_expiry_and_frees_the_old_key,
            rotation::rotate_can_set_the_owner_in_the_same_step,
            rotation::rotate_leaves_a_rotation_mark_for_a_minute_or_until_the_old_expiry,
            rotation::a_rotation_mark_is_not_a_session,
            rotation::was_rotated_is_false_for_keys_that_were_not_rotated,
            rotation::rotate_of_a_session_that_is_not_live_gives_not_found,
            rotation::rotate_onto_a_live_key_gives_already_exists_and_changes_nothing,
            rotation::rotate_onto_an_expired_key_replaces_it,
            rotation::delete_returns_true_only_for_a_live_record,
            owners::list_by_owner_lists_only_the_live_sessions_of_that_owner,
            owners::the_owner_index_follows_expiry_rotation_owner_change_and_deletion,
            owners::delete_by_owner_ends_every_session_of_the_owner_and_counts_the_live_ones,
            owners::every_owner_the_contract_accepts_is_kept_apart,
            owners::a_damaged_record_never_hides_an_owners_other_sessions,
            shards::create_of_a_record_outside_its_owners_shard_gives_wrong_shard,
            shards::rotate_onto_a_key_outside_the_resulting_owners_shard_gives_wrong_shard,
            sweep::delete_expired_removes_only_expired_records_and_respects_limit,
            sweep::delete_expired_never_removes_a_renewed_session,
            payloads::data_is_stored_as_opaque_bytes_of_any_size,
            manager::loading_an_unknown_id_never_creates_a_session,
            manager::the_idle_timeout_ends_an_inactive_session,
            manager::the_absolute_timeout_ends_an_active_session,
            manager::renewal_writes_only_when_the_threshold_is_crossed,
            manager::rotation_keeps_data_owner_and_the_absolute_deadline,
            manager::rotation_never_lets_a_stale_copy_overwrite_a_newer_write,
            manager::login_rotates_and_sets_the_owner_in_one_step,
            manager::unusable_configurations_are_refused_when_the_manager_is_built,
            manager::owners_the_contract_refuses_are_refused_before_any_store_call,
            manager::saving_a_stale_session_gives_conflict,
            manager::update_with_under_contention_loses_no_update,
            manager::an_owner_can_end_only_their_own_sessions,
            manager::malformed_ids_are_refused_before_any_store_call,
            manager::oversized_data_is_refused_and_nothing_is_written,
            manager::corrupted_stored_bytes_give_corrupt,
            manager::foreign_data_gives_corrupt_through_the_manager,
            manager::no_record_holds_the_raw_token,
            state_machine::the_store_behaves_like_the_model_of_the_contract,
            concurrent::concurrent_histories_are_linearizable,
            races::an_update_racing_a_delete_never_resurrects,
            races::a_touch_racing_a_delete_never_resurrects,
            races::two_updates_of_the_same_version_exactly_one_wins,
            races::rotate_racing_update_lands_in_the_new_session_or_fails_with_not_found,
            races::update_with_from_32_tasks_loses_no_increment,
            races::a_login_racing_an_increment_loses_neither_write,
            races::a_rotate_across_shards_never_shows_two_live_copies,
        );
    };
    (@tests $factory:expr; $($file:ident :: $rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                $crate::run($factory, $crate::rules::$file::$rule);
            }
        )*
    };
}
