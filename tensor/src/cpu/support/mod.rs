//! What the CPU kernels are built from, as opposed to kernels themselves: the loop bodies that
//! vectorize ([`lanes`]) and their per-instruction-set entry points ([`simd`]), fast
//! elementwise math ([`math`]), the walk over strided views ([`strided`]), and the splitting of
//! work across threads ([`parallel`]) on the kernels' own thread pool ([`pool`]).

pub mod lanes;
pub mod math;
pub mod parallel;
pub mod pool;
pub mod simd;
pub mod strided;
