//! The checker: a pure model of the contract, the recording of concurrent
//! histories, and the linearizability search over them. The rules use it;
//! it knows nothing of them.

pub mod history;
pub mod linearizability;
pub mod model;
