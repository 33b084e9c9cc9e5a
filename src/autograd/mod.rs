//! Define-by-run reverse-mode autodiff.
//!
//! Every op that sees an input needing a gradient records a [`Node`] holding its backward closure
//! (with whatever it saved) and edges to its inputs' nodes or parameter cells. Edges never hold
//! input buffers, so activations nobody saved are freed as soon as their tensors drop.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Backward of one op as the graph stores it: output gradient and which inputs need one → one
/// gradient per input. Ops do not implement this by hand: fixed-arity ops go through
/// [`Typed`] (arity checked by the compiler), variadic ones (concat) through a closure.
pub trait BackwardFn: Send {
    fn backward(&self, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>>;
}

impl<F> BackwardFn for F
where
    F: Fn(&Tensor, &[bool]) -> Result<Vec<Option<Tensor>>> + Send,
{
    fn backward(&self, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        self(grad, needs)
    }
}

/// The backward of an op with exactly `N` inputs: `F` takes which of the `N` inputs need a
/// gradient and returns exactly `N` optional gradients, so a wrong arity does not compile.
pub(crate) struct Typed<const N: usize, F>(pub F);

impl<const N: usize, F> BackwardFn for Typed<N, F>
where
    F: Fn(&Tensor, [bool; N]) -> Result<[Option<Tensor>; N]> + Send,
{
    fn backward(&self, grad: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // The node was built from the same `N` inputs, so the slice always has length N.
        let needs: [bool; N] = needs.try_into().map_err(|_| {
            Error::Internal(format!(
                "{} gradient flags for a {N}-input backward",
                needs.len()
            ))
        })?;
        Ok(Vec::from((self.0)(grad, needs)?))
    }
}

/// Gradient slot of a parameter.
pub struct LeafCell {
    requires_grad: AtomicBool,
    grad: Mutex<Option<Tensor>>,
}

impl LeafCell {
    pub(crate) fn new(rg: bool) -> Self {
        LeafCell {
            requires_grad: AtomicBool::new(rg),
            grad: Mutex::new(None),
        }
    }
    pub fn requires_grad(&self) -> bool {
        self.requires_grad.load(Relaxed)
    }
    pub(crate) fn set_requires_grad(&self, on: bool) {
        self.requires_grad.store(on, Relaxed)
    }
    pub(crate) fn grad(&self) -> Option<Tensor> {
        self.grad.lock().unwrap().clone()
    }
    pub(crate) fn clear(&self) {
        *self.grad.lock().unwrap() = None;
    }
    pub(crate) fn set(&self, g: Option<Tensor>) {
        *self.grad.lock().unwrap() = g;
    }
    fn accumulate(&self, g: Tensor) -> Result<()> {
        let mut slot = self.grad.lock().unwrap();
        *slot = Some(match slot.take() {
            None => g,
            Some(old) => crate::tensor::kernels::accumulate(&old, &g)?,
        });
        Ok(())
    }
}

/// Where an input's gradient goes.
#[derive(Clone)]
pub enum Edge {
    Leaf(Arc<LeafCell>),
    Op(Arc<Node>),
}

/// One recorded op.
pub struct Node {
    name: &'static str,
    backward: Mutex<Option<Box<dyn BackwardFn>>>,
    next: Vec<Option<Edge>>,
}

impl Node {
    pub(crate) fn new(
        name: &'static str,
        f: Box<dyn BackwardFn>,
        next: Vec<Option<Edge>>,
    ) -> Arc<Node> {
        Arc::new(Node {
            name,
            backward: Mutex::new(Some(f)),
            next,
        })
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
}

thread_local! {
    static NO_GRAD: Cell<u32> = const { Cell::new(0) };
}

/// Whether ops record graph nodes on this thread.
pub fn is_grad_enabled() -> bool {
    NO_GRAD.with(|c| c.get() == 0)
}

/// Disables graph recording until dropped (nestable).
pub struct NoGradGuard(());

impl NoGradGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NO_GRAD.with(|c| c.set(c.get() + 1));
        NoGradGuard(())
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD.with(|c| c.set(c.get() - 1));
    }
}

/// Runs `f` without recording a graph.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

fn key(n: &Arc<Node>) -> usize {
    Arc::as_ptr(n) as usize
}

/// Nodes reachable from `roots` in reverse topological order (outputs before inputs): the
/// reversed post-order of one depth-first search over all roots.
fn topo(roots: &[Arc<Node>]) -> Vec<Arc<Node>> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        if !seen.insert(key(root)) {
            continue;
        }
        // Iterative post-order DFS: deep nets would overflow the stack with recursion.
        let mut stack: Vec<(Arc<Node>, usize)> = vec![(root.clone(), 0)];
        while let Some((node, i)) = stack.pop() {
            if i < node.next.len() {
                stack.push((node.clone(), i + 1));
                if let Some(Edge::Op(child)) = &node.next[i] {
                    if seen.insert(key(child)) {
                        stack.push((child.clone(), 0));
                    }
                }
            } else {
                order.push(node);
            }
        }
    }
    order.reverse();
    order
}

enum Target {
    /// Accumulate into every parameter that requires a gradient.
    Params,
    /// Accumulate into these parameter cells only (those of them that require a gradient).
    ParamsIn(std::collections::HashSet<usize>),
    /// Only compute gradients for these nodes / parameter cells; leave parameters untouched.
    Only {
        nodes: HashMap<usize, usize>,
        leaves: HashMap<usize, usize>,
    },
}

/// What a gradient `g` reaching parameter `cell` does under `target`.
fn deliver(
    cell: &Arc<LeafCell>,
    g: Tensor,
    target: &Target,
    captured: &mut [Option<Tensor>],
) -> Result<()> {
    match target {
        Target::Params => {
            if cell.requires_grad() {
                cell.accumulate(g)?;
            }
        }
        Target::ParamsIn(set) => {
            if cell.requires_grad() && set.contains(&(Arc::as_ptr(cell) as usize)) {
                cell.accumulate(g)?;
            }
        }
        Target::Only { leaves, .. } => {
            if let Some(&i) = leaves.get(&(Arc::as_ptr(cell) as usize)) {
                captured[i] = Some(match captured[i].take() {
                    None => g,
                    Some(old) => crate::tensor::kernels::accumulate(&old, &g)?,
                });
            }
        }
    }
    Ok(())
}

/// Backpropagates from every `(root, seed)` at once (ones for a scalar root without a seed):
/// one traversal of the union of their graphs, gradients meeting where the graphs do.
fn run(
    roots: &[(&Tensor, Option<Tensor>)],
    retain: bool,
    target: &Target,
) -> Result<Vec<Option<Tensor>>> {
    let n_targets = match target {
        Target::Params | Target::ParamsIn(_) => 0,
        Target::Only { nodes, leaves } => nodes
            .values()
            .chain(leaves.values())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0),
    };
    let mut captured: Vec<Option<Tensor>> = vec![None; n_targets];
    let mut grads: HashMap<usize, Tensor> = HashMap::new();
    let mut root_nodes = Vec::new();
    for (root, grad) in roots {
        let seed = match grad {
            Some(g) => {
                if g.shape() != root.shape() {
                    return Err(Error::shape(
                        "backward",
                        root.shape(),
                        g.shape(),
                        "gradient must match the output's shape",
                    ));
                }
                g.clone()
            }
            None => {
                if root.numel() != 1 {
                    return Err(Error::invalid(
                        "backward",
                        format!(
                            "backward() without a gradient needs a scalar output, got shape {:?}",
                            root.shape()
                        ),
                    ));
                }
                Tensor::full(root.gpu(), root.shape(), 1.0)?
            }
        };
        let _ng = NoGradGuard::new();
        match root.edge() {
            None => {
                return Err(Error::invalid(
                    "backward",
                    "the output does not require grad (no parameter or input needing a gradient took part, or it was computed under no_grad)",
                ))
            }
            Some(Edge::Leaf(cell)) => deliver(&cell, seed, target, &mut captured)?,
            Some(Edge::Op(n)) => {
                let k = key(&n);
                let acc = match grads.remove(&k) {
                    None => seed,
                    Some(old) => crate::tensor::kernels::accumulate(&old, &seed)?,
                };
                grads.insert(k, acc);
                root_nodes.push(n);
            }
        }
    }
    let _ng = NoGradGuard::new();
    let order = topo(&root_nodes);
    // Which nodes lead to something we want a gradient for; prunes work (e.g. weight grads
    // when only d(logit)/d(features) is asked for Grad-CAM).
    let mut useful: HashMap<usize, bool> = HashMap::new();
    for n in order.iter().rev() {
        let mut u = false;
        if let Target::Only { nodes, .. } = target {
            u |= nodes.contains_key(&key(n));
        }
        for e in n.next.iter().flatten() {
            u |= edge_useful(e, target, &useful);
        }
        useful.insert(key(n), u);
    }
    for node in &order {
        let Some(g) = grads.remove(&key(node)) else {
            continue;
        };
        if let Target::Only { nodes, .. } = target {
            if let Some(&i) = nodes.get(&key(node)) {
                captured[i] = Some(g.clone());
            }
        }
        if !useful[&key(node)] {
            continue;
        }
        let needs: Vec<bool> = node
            .next
            .iter()
            .map(|e| e.as_ref().is_some_and(|e| edge_useful(e, target, &useful)))
            .collect();
        if !needs.iter().any(|&b| b) {
            continue;
        }
        let input_grads = {
            let mut slot = node.backward.lock().unwrap();
            let f = slot.as_ref().ok_or_else(|| {
                Error::invalid(
                    "backward",
                    format!(
                        "the graph through {:?} was already freed by an earlier backward; use backward_retain / retain_graph for two passes",
                        node.name
                    ),
                )
            })?;
            let r = f.backward(&g, &needs)?;
            if !retain {
                *slot = None;
            }
            r
        };
        if input_grads.len() != node.next.len() {
            return Err(Error::Internal(format!(
                "backward of {} returned {} gradients for {} inputs",
                node.name,
                input_grads.len(),
                node.next.len()
            )));
        }
        for ((edge, gi), need) in node.next.iter().zip(input_grads).zip(&needs) {
            let (Some(edge), Some(gi), true) = (edge, gi, need) else {
                continue;
            };
            match edge {
                Edge::Leaf(cell) => deliver(cell, gi, target, &mut captured)?,
                Edge::Op(child) => {
                    let k = key(child);
                    let acc = match grads.remove(&k) {
                        None => gi,
                        Some(old) => crate::tensor::kernels::accumulate(&old, &gi)?,
                    };
                    grads.insert(k, acc);
                }
            }
        }
    }
    Ok(captured)
}

fn edge_useful(e: &Edge, target: &Target, useful: &HashMap<usize, bool>) -> bool {
    match e {
        Edge::Leaf(cell) => match target {
            Target::Params => cell.requires_grad(),
            Target::ParamsIn(set) => {
                cell.requires_grad() && set.contains(&(Arc::as_ptr(cell) as usize))
            }
            Target::Only { leaves, .. } => leaves.contains_key(&(Arc::as_ptr(cell) as usize)),
        },
        Edge::Op(n) => useful.get(&key(n)).copied().unwrap_or(false),
    }
}

/// Backpropagates `grad` (ones for a scalar when `None`) from `root` into parameter gradients.
pub fn backward(root: &Tensor, grad: Option<Tensor>, retain_graph: bool) -> Result<()> {
    run(&[(root, grad)], retain_graph, &Target::Params).map(|_| ())
}

/// [`backward`] into `params` only: every other parameter's gradient is left untouched and
/// nothing is computed for it. With one forward of a shared sub-network feeding two losses,
/// this backpropagates each loss into its own model (a GAN's G loss into G, D's loss into D)
/// without recomputing the shared forward. A tensor of `params` that is not a parameter is an
/// error.
pub fn backward_into(root: &Tensor, params: &[Tensor], retain_graph: bool) -> Result<()> {
    backward_many_into(&[(root, None)], params, retain_graph)
}

/// [`backward_into`] from several roots in one pass, each with its upstream gradient (`None`:
/// ones, for a scalar), like `torch.autograd.backward(tensors, grad_tensors)`: a loss and the
/// gradient another graph passed back to an intermediate tensor reach the parameters together.
pub fn backward_many_into(
    roots: &[(&Tensor, Option<Tensor>)],
    params: &[Tensor],
    retain_graph: bool,
) -> Result<()> {
    let mut set = std::collections::HashSet::new();
    for (i, p) in params.iter().enumerate() {
        let k = p.leaf_key().ok_or_else(|| {
            Error::invalid(
                "backward_into",
                format!(
                    "params[{i}] of shape {:?} is not a parameter (a computed or detached tensor)",
                    p.shape()
                ),
            )
        })?;
        set.insert(k);
    }
    run(roots, retain_graph, &Target::ParamsIn(set)).map(|_| ())
}

/// Gradients of scalar `output` w.r.t. `inputs` (intermediate tensors or parameters), like
/// `torch.autograd.grad`. Parameter `.grad` slots are not touched. An input the output does not
/// depend on gets `None`.
pub fn grad(
    output: &Tensor,
    inputs: &[&Tensor],
    retain_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    grad_of(output, None, inputs, retain_graph)
}

/// [`grad`] of a non-scalar `output` with the upstream gradient `seed` (its shape): the
/// vector-Jacobian product a split op needs to backpropagate one piece's sub-graph.
pub(crate) fn grad_seeded(
    output: &Tensor,
    seed: Tensor,
    inputs: &[&Tensor],
    retain_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    grad_of(output, Some(seed), inputs, retain_graph)
}

fn grad_of(
    output: &Tensor,
    seed: Option<Tensor>,
    inputs: &[&Tensor],
    retain_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    let mut nodes = HashMap::new();
    let mut leaves = HashMap::new();
    for (i, t) in inputs.iter().enumerate() {
        match t.edge() {
            Some(Edge::Op(n)) => {
                nodes.insert(key(&n), i);
            }
            Some(Edge::Leaf(c)) => {
                leaves.insert(Arc::as_ptr(&c) as usize, i);
            }
            None => {
                return Err(Error::invalid(
                    "grad",
                    format!("input {i} of shape {:?} does not require grad", t.shape()),
                ))
            }
        }
    }
    let mut out = run(
        &[(output, seed)],
        retain_graph,
        &Target::Only { nodes, leaves },
    )?;
    out.resize(inputs.len(), None);
    // An input listed twice gets its gradient in every slot it occupies.
    for i in 0..inputs.len() {
        if out[i].is_none() {
            if let Some(j) = (0..inputs.len())
                .find(|&j| j != i && out[j].is_some() && same_node(inputs[i], inputs[j]))
            {
                out[i] = out[j].clone();
            }
        }
    }
    Ok(out)
}

fn same_node(a: &Tensor, b: &Tensor) -> bool {
    match (a.edge(), b.edge()) {
        (Some(Edge::Op(x)), Some(Edge::Op(y))) => Arc::ptr_eq(&x, &y),
        (Some(Edge::Leaf(x)), Some(Edge::Leaf(y))) => Arc::ptr_eq(&x, &y),
        _ => false,
    }
}
