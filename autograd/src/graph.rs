//! Recording mode and the backward pass.
//!
//! The backward pass orders the graph's nodes so that every node comes before the nodes it was
//! computed from (a reverse topological order, found by an iterative depth-first search, so a
//! chain of any length fits in memory rather than on the call stack). It then visits them once
//! each: a node's output gradient is complete when it is visited, its rule turns it into input
//! gradients, and leaves accumulate theirs. Each node is dropped right after use, freeing the
//! tensors its rule saved, unless the caller asks to keep the graph.

use crate::var::{Node, Var};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use tensor::{Error, Result, Tensor};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record graph nodes.
pub fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous recording mode when dropped.
pub struct NoGradGuard {
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Turns recording off on this thread until the guard is dropped.
pub fn no_grad_guard() -> NoGradGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { previous }
}

/// Runs `f` with recording off: its ops build no graph and save nothing.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = no_grad_guard();
    f()
}

/// Adds `g` into the gradient slot of a leaf, in place when the slot owns its storage.
fn accumulate_leaf(leaf: &Var, g: Tensor) -> Result<()> {
    let mut slot = leaf.0.grad.lock().expect("grad lock poisoned");
    match slot.as_mut() {
        None => *slot = Some(g),
        Some(acc) => {
            if acc.add_(&g).is_err() {
                *acc = acc.try_add(&g)?;
            }
        }
    }
    Ok(())
}

/// Nodes reachable from `root`, each before the nodes it was computed from.
fn order_from(root: &Var) -> Vec<Var> {
    let mut post_order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((var, expanded)) = stack.pop() {
        if expanded {
            post_order.push(var);
            continue;
        }
        if !seen.insert(var.id()) {
            continue;
        }
        let node = var.0.node.lock().expect("node lock poisoned");
        let inputs: Vec<Var> = node.as_ref().map(|n| n.inputs.clone()).unwrap_or_default();
        drop(node);
        stack.push((var, true));
        for input in inputs.into_iter().rev() {
            if !input.is_leaf() && !seen.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    post_order.reverse();
    post_order
}

/// Runs the backward pass from `root` with upstream gradient `grad` (same shape as root).
pub(crate) fn backward(root: &Var, grad: Tensor, keep_graph: bool) -> Result<()> {
    if root.value().shape() != grad.shape() {
        return Err(Error::ShapeMismatch {
            op: "backward",
            lhs: root.shape(),
            rhs: grad.shape().to_vec(),
        });
    }
    if !root.requires_grad() {
        return Err(Error::InvalidArgument(
            "backward: this value does not depend on anything that requires a gradient".into(),
        ));
    }
    if root.is_leaf() {
        return accumulate_leaf(root, grad);
    }
    if root.0.node.lock().expect("node lock poisoned").is_none() {
        return Err(Error::InvalidArgument(
            "backward: the graph was already freed by an earlier backward pass; \
             run the forward pass again (or keep the graph on the first pass)"
                .into(),
        ));
    }
    let mut grads: HashMap<usize, Tensor> = HashMap::from([(root.id(), grad)]);
    for var in order_from(root) {
        let Some(g) = grads.remove(&var.id()) else {
            continue;
        };
        let mut slot = var.0.node.lock().expect("node lock poisoned");
        let node: Node = match (keep_graph, slot.take()) {
            (_, None) => continue,
            (true, Some(n)) => {
                let inputs = n.inputs.clone();
                let rule_grads = n.rule.backward(&g);
                *slot = Some(n);
                drop(slot);
                propagate(&inputs, rule_grads, &mut grads)?;
                continue;
            }
            (false, Some(n)) => n,
        };
        drop(slot);
        let rule_grads = node.rule.backward(&g);
        propagate(&node.inputs, rule_grads, &mut grads)?;
    }
    Ok(())
}

/// Hands each input its gradient: leaves accumulate, inner nodes collect for later.
fn propagate(
    inputs: &[Var],
    rule_grads: Vec<Option<Tensor>>,
    grads: &mut HashMap<usize, Tensor>,
) -> Result<()> {
    debug_assert_eq!(
        inputs.len(),
        rule_grads.len(),
        "a backward rule returned the wrong number of gradients"
    );
    for (input, g) in inputs.iter().zip(rule_grads) {
        let Some(g) = g else { continue };
        if !input.requires_grad() {
            continue;
        }
        if input.is_leaf() {
            accumulate_leaf(input, g)?;
        } else {
            match grads.remove(&input.id()) {
                None => grads.insert(input.id(), g),
                Some(acc) => grads.insert(input.id(), acc.try_add(&g)?),
            };
        }
    }
    Ok(())
}

impl Var {
    /// Backpropagates from this scalar: every leaf it depends on accumulates `d self / d leaf`.
    /// The graph is freed as it is walked.
    #[track_caller]
    pub fn backward(&self) {
        if let Err(e) = self.try_backward() {
            panic!("{e}");
        }
    }

    /// [`Var::backward`] returning errors instead of panicking.
    pub fn try_backward(&self) -> Result<()> {
        let v = self.value();
        if v.numel() != 1 {
            return Err(Error::InvalidArgument(format!(
                "backward: needs a single-element output, got shape {:?}; pass an upstream gradient instead",
                v.shape()
            )));
        }
        backward(self, v.ones_like(), false)
    }

    /// Backpropagates an upstream gradient `grad` (shaped like this var).
    pub fn backward_with(&self, grad: Tensor) -> Result<()> {
        backward(self, grad, false)
    }

    /// Like [`Var::backward_with`] but keeps the graph, so it can be walked again.
    pub fn backward_keep_graph(&self, grad: Tensor) -> Result<()> {
        backward(self, grad, true)
    }
}
