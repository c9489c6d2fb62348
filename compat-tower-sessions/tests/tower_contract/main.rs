//! tower-sessions' store contract through `TowerStore`, on every backend of
//! this workspace (Redis also as a Redis Cluster) and for every
//! tower-sessions version whose feature is on:
//! `cargo test -p compat-tower-sessions --all-features`. Tests are named
//! `<version>::<backend>::<rule>`.

mod backends;
mod harness;
mod wire;
#[macro_use]
mod rules;

#[cfg(feature = "tower-sessions-0.14")]
rules!(tower_0_14, tower_sessions_core_0_14);

#[cfg(feature = "tower-sessions-0.15")]
rules!(tower_0_15, tower_sessions_core_0_15);
