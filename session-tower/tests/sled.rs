//! The HTTP kit against `SledStore`, each test in its own temporary
//! directory.

session_tower::http_suite!(store_sled::testing::SledFactory);
