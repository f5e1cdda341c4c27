//! The whole stack in one crate: re-exports of the member crates.
pub use llm;
pub use tensor;
