//! placeholder while the suite is written
#![allow(missing_docs)]
mod harness;
pub use harness::*;
