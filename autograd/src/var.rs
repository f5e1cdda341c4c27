//! `Var`: a tensor that remembers how it was computed.
//!
//! Leaves are created by the user: parameters (which require gradients) and constants (which
//! do not). Every op on vars returns a new var holding its value and, when some input requires
//! a gradient and recording is on (see [`crate::no_grad`]), a graph node: the op's backward rule
//! and its inputs. `backward()` walks those nodes from the output, accumulates gradients into
//! the leaves, and frees each node as it goes.

use crate::graph::grad_enabled;
use crate::op::Backward;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tensor::{DType, Device, Tensor};

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// How a non-leaf var was computed: its backward rule and its inputs.
pub(crate) struct Node {
    pub(crate) rule: Box<dyn Backward>,
    pub(crate) inputs: Vec<Var>,
}

pub(crate) struct VarInner {
    pub(crate) id: usize,
    value: RwLock<Tensor>,
    requires_grad: AtomicBool,
    pub(crate) grad: Mutex<Option<Tensor>>,
    /// `Some` for a recorded op output until a backward pass consumes it.
    pub(crate) node: Mutex<Option<Node>>,
    is_leaf: bool,
}

/// Drops a graph iteratively: a long chain of nodes, each owning its inputs, would otherwise
/// be dropped by recursion as deep as the chain and overflow the stack.
impl Drop for VarInner {
    fn drop(&mut self) {
        let Some(node) = self.node.get_mut().map(Option::take).unwrap_or(None) else {
            return;
        };
        let mut pending = node.inputs;
        while let Some(var) = pending.pop() {
            // Only a var this graph owns alone is torn down here; shared ones live on.
            if let Ok(mut inner) = Arc::try_unwrap(var.0) {
                if let Some(node) = inner.node.get_mut().map(Option::take).unwrap_or(None) {
                    pending.extend(node.inputs);
                }
            }
        }
    }
}

/// A node of the computation graph. Cloning is cheap and shares the node.
#[derive(Clone)]
pub struct Var(pub(crate) Arc<VarInner>);

impl Var {
    fn new(value: Tensor, requires_grad: bool, node: Option<Node>, is_leaf: bool) -> Var {
        Var(Arc::new(VarInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value: RwLock::new(value),
            requires_grad: AtomicBool::new(requires_grad),
            grad: Mutex::new(None),
            node: Mutex::new(node),
            is_leaf,
        }))
    }

    /// A leaf that requires gradients (a trainable parameter).
    pub fn parameter(value: Tensor) -> Var {
        Var::new(value, true, None, true)
    }

    /// A leaf without gradients (inputs, targets, frozen values).
    pub fn constant(value: Tensor) -> Var {
        Var::new(value, false, None, true)
    }

    /// The output of an op. The graph node (built by `rule`, only when needed) is recorded
    /// when recording is on and some input requires a gradient; otherwise this is a constant
    /// and `rule` is never called, so `no_grad` code saves nothing for a backward pass.
    pub(crate) fn from_op<R: Backward + 'static>(
        value: Tensor,
        inputs: &[&Var],
        rule: impl FnOnce() -> R,
    ) -> Var {
        if grad_enabled() && inputs.iter().any(|v| v.requires_grad()) {
            let node = Node {
                rule: Box::new(rule()),
                inputs: inputs.iter().map(|&v| v.clone()).collect(),
            };
            Var::new(value, true, Some(node), false)
        } else {
            Var::constant(value)
        }
    }

    /// A process-unique id (stable for the life of this var).
    pub fn id(&self) -> usize {
        self.0.id
    }

    /// The current value (a cheap clone sharing storage).
    pub fn value(&self) -> Tensor {
        self.0
            .value
            .read()
            .expect("var value lock poisoned")
            .clone()
    }

    /// Replaces the value (e.g. loading weights). The shape may not change.
    #[track_caller]
    pub fn set_value(&self, value: Tensor) {
        let mut v = self.0.value.write().expect("var value lock poisoned");
        assert_eq!(
            v.shape(),
            value.shape(),
            "set_value: shape {:?} does not match {:?}",
            value.shape(),
            v.shape()
        );
        *v = value;
    }

    /// Runs `f` on the value with exclusive access (for in-place optimizer updates).
    pub fn update<R>(&self, f: impl FnOnce(&mut Tensor) -> R) -> R {
        f(&mut self.0.value.write().expect("var value lock poisoned"))
    }

    /// The accumulated gradient of a leaf, if any backward pass reached it.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().expect("grad lock poisoned").clone()
    }

    /// Replaces the accumulated gradient (`None` clears it).
    pub fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock().expect("grad lock poisoned") = grad;
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// True when gradients flow to (or through) this var.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Freezes (`false`) or unfreezes (`true`) a leaf. Frozen parameters get no gradient and
    /// ops on them alone record no graph.
    #[track_caller]
    pub fn set_requires_grad(&self, on: bool) {
        assert!(self.is_leaf(), "only leaves can be frozen or unfrozen");
        self.0.requires_grad.store(on, Ordering::Relaxed);
    }

    /// True for user-created vars (parameters and constants).
    pub fn is_leaf(&self) -> bool {
        self.0.is_leaf
    }

    /// A constant holding the same value (sharing storage): gradients stop here.
    pub fn detach(&self) -> Var {
        Var::constant(self.value())
    }

    /// The op that produced this var, while its node is alive.
    pub fn op(&self) -> Option<crate::Op> {
        self.0
            .node
            .lock()
            .expect("node lock poisoned")
            .as_ref()
            .map(|n| n.rule.op())
    }

    /// Shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.value().shape().to_vec()
    }

    /// Size of `dim` (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, dim: isize) -> usize {
        self.value().dim(dim)
    }

    /// Number of dims of the value.
    pub fn rank(&self) -> usize {
        self.value().rank()
    }

    /// Number of elements of the value.
    pub fn numel(&self) -> usize {
        self.value().numel()
    }

    /// DType of the value.
    pub fn dtype(&self) -> DType {
        self.value().dtype()
    }

    /// Device of the value.
    pub fn device(&self) -> Device {
        self.value().device()
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.value();
        write!(
            f,
            "Var(id={}, shape={:?}, dtype={}, requires_grad={})",
            self.id(),
            v.shape(),
            v.dtype(),
            self.requires_grad()
        )
    }
}

impl From<Tensor> for Var {
    /// A constant.
    fn from(t: Tensor) -> Var {
        Var::constant(t)
    }
}
