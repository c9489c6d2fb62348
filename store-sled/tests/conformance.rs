//! The shared contract suite against `SledStore`, each test in its own
//! temporary directory (see `store_sled::testing::SledFactory`).

conformance::suite!(store_sled::testing::SledFactory);
