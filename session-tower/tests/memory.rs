//! The HTTP kit against `MemoryStore`.

session_tower::http_suite!(store_memory::testing::MemoryFactory);
