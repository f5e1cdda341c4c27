//! The whole stack in one crate: re-exports of the member crates.
pub use autograd;
pub use llm;
pub use nn;
pub use tensor;
