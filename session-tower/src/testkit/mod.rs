//! The HTTP-level test kit (feature `testkit`): every rule of the layer as
//! an async test, run against any backend through the same
//! [`conformance::StoreFactory`] the store suite uses.
//!
//! Each rule builds the kit application ([`Harness`]: an axum router of
//! small handlers under [`SessionLayer`](crate::SessionLayer) and
//! [`CsrfLayer`](crate::CsrfLayer)) on the backend's fresh store wrapped in
//! a [`CountingStore`], with the suite's manual clock, and sends requests
//! in-process (`tower::ServiceExt::oneshot`); concurrency rules run real
//! overlapping requests on the suite's multi-thread runtime, held at
//! [`Gates`] where a rule needs an exact interleaving. A factory whose
//! server is unreachable skips loudly, or fails under
//! `SESSIONS_REQUIRE_SERVICES=1`, as in the store suite.
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
//! session_tower::http_suite!(Memory);
//! # fn main() {}
//! ```

mod app;
mod counting;
pub mod rules;

pub use app::{Gates, Harness, Reply, TestRequest, manager_config};
pub use counting::{Calls, CountingStore, Failing};

/// Expands to one `#[test]` per rule of the HTTP layer, each against a
/// fresh store from the factory expression.
#[macro_export]
macro_rules! http_suite {
    ($factory:expr) => {
        $crate::http_suite!(@tests $factory;
            an_untouched_request_makes_no_store_call,
            a_read_makes_one_load_and_no_write,
            renewal_touches_without_a_data_write_and_refreshes_the_cookie,
            a_write_makes_a_load_and_an_update,
            a_login_makes_a_load_and_a_rotate,
            the_session_cookie_has_the_secure_defaults,
            a_browser_session_cookie_has_no_max_age_and_is_never_refreshed,
            logout_sends_a_removal_cookie_that_repeats_every_attribute,
            a_malformed_token_is_no_session_and_makes_no_store_call,
            an_unknown_or_expired_token_is_never_adopted,
            nothing_is_saved_on_a_5xx,
            an_explicit_logout_happens_even_on_a_5xx,
            sixty_four_overlapping_increments_count_exactly_64,
            two_overlapping_requests_changing_different_keys_both_keep_their_change,
            a_save_after_a_concurrent_logout_stays_logged_out,
            an_old_cookie_request_overlapping_a_login_never_clobbers_the_new_cookie,
            login_keeps_data_and_the_absolute_deadline_and_relogin_rotates_again,
            csrf_refuses_unsafe_requests_without_the_right_token,
            a_store_that_is_down_gives_the_handler_an_error_and_a_failed_save_a_500,
            header_tokens_come_and_go_in_headers,
            devices_are_listed_and_ended_one_others_or_all,
            the_handlers_cache_headers_are_kept_or_made_safe,
        );
    };
    (@tests $factory:expr; $($rule:ident),* $(,)?) => {
        $(
            #[test]
            fn $rule() {
                ::conformance::run($factory, $crate::testkit::rules::$rule);
            }
        )*
    };
}
