//! The whole conformance suite against `MemoryStore`.

conformance::suite!(store_memory::testing::MemoryFactory);
