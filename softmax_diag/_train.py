r"""Discrete training with optax: `train_full` on matrices, `train_reduced` on singular values.

One step is the optax loop, `updates, state = optimizer.update(grads, state, y)`,
`y = optax.apply_updates(y, updates)`, inside `jax.lax.scan`. The gradients are the
package's vector fields negated, `grads = -field(t, y, None)`: for the matrices that is
$\nabla_{W_l} \mathcal L$ (equal to `jax.grad` of the loss, with the label entries of the
softmax computed accurately near zero loss), and for singular values it is
$\nabla_\sigma\, \mathcal L(\mathrm{lift}(\sigma))$, the gradient of the loss of the lifted
state. (For Walsh this equals `jax.grad` of the reduced loss; for Fourier the reduced
loss is only defined on tied pairs, and its `jax.grad` puts a pair's whole gradient on
the cosine entry, so the field is the right gradient.)

Why the reduced run reproduces the full one exactly for some optimizers: on a spectral
state the full gradient is `lift` of the reduced one, and `lift` is linear. An optimizer
whose update is a linear function of the gradient history (SGD, heavy-ball momentum,
Nesterov, decoupled weight decay) therefore keeps the spectral form and moves the
singular values exactly as the reduced run does. Entrywise nonlinear optimizers (Adam,
RMSProp, sign methods) do not: they leave the spectral form (see
[`metrics.leakage`][softmax_diag.metrics.leakage]).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._bases import check_tied, spectral_basis
from ._checks import check_int
from ._fields import FullGradientFlow, ReducedGradientFlow
from ._init import check_params, check_sv
from ._problem import UFM, check_problem


@eqx.filter_jit
def _train(field, y0, optimizer, num_steps, every):
    # `optimizer` (a tuple of functions), `num_steps` and `every` are static: one
    # compilation per optimizer object, shape and step count.
    def step(carry, _):
        y, state = carry
        grads = jax.tree.map(jnp.negative, field(0.0, y, None))
        updates, state = optimizer.update(grads, state, y)
        return (optax.apply_updates(y, updates), state), None

    def chunk(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=every)
        return carry, carry[0]

    _, saved = jax.lax.scan(chunk, (y0, optimizer.init(y0)), None, length=num_steps // every)
    return tuple(jnp.concatenate([y[None], ys]) for y, ys in zip(y0, saved))


def _check(problem, optimizer, num_steps, every):
    problem = check_problem(problem)
    if not (callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))):
        raise TypeError(
            "`optimizer` must be an optax.GradientTransformation (with .init and .update), "
            f"for example optax.sgd(1e-2); got {type(optimizer).__name__}."
        )
    num_steps = check_int("num_steps", num_steps, minimum=0)
    every = check_int("every", every, minimum=1)
    if num_steps % every:
        raise ValueError(
            f"`num_steps`={num_steps} must be a multiple of `every`={every} (the "
            "trajectory saves steps 0, every, 2*every, ..., num_steps); round num_steps "
            f"to {num_steps - num_steps % every} or {num_steps - num_steps % every + every}."
        )
    return num_steps, every


def train_full(problem: UFM, params0, optimizer, num_steps: int, *, every: int = 1) -> tuple:
    r"""Trains the weight matrices with an optax optimizer for `num_steps` steps.

    Each step takes the gradient $\nabla_{W_l}\mathcal L$ (the negated
    [`FullGradientFlow`][softmax_diag.FullGradientFlow]) and applies
    `optimizer.update` and `optax.apply_updates`, all inside one `jax.lax.scan`. With
    `optax.sgd(lr)` this is explicit Euler on the gradient flow with step `lr`:
    $W_l \leftarrow W_l - \mathrm{lr}\, \nabla_{W_l} \mathcal L$.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].
    - `params0`: `(W_L, ..., W_1)` at step 0.
    - `optimizer`: an `optax.GradientTransformation`, e.g. `optax.sgd(0.1, momentum=0.9)`.
        It is a compile-time constant: reuse one object to avoid recompiling.
    - `num_steps`: number of optimizer steps (static).
    - `every`: save every `every`-th step; `num_steps` must be a multiple of it.

    **Returns:** a tuple shaped like `params0` with a leading axis of
    `num_steps // every + 1` states: steps `0, every, ..., num_steps`, step 0 first.

    Pure JAX: `jax.vmap` over `params0` works.

    **Example:**

    ```python
    traj = softmax_diag.train_full(problem, params0, optax.sgd(0.5), 1000, every=10)
    losses = jax.vmap(lambda p: softmax_diag.metrics.loss(problem, p))(traj)
    ```
    """
    num_steps, every = _check(problem, optimizer, num_steps, every)
    params0 = check_params(problem, params0, "params0")
    return _train(FullGradientFlow(problem), params0, optimizer, num_steps, every)


def train_reduced(
    problem: UFM, sv0, optimizer, num_steps: int, *, basis=None, every: int = 1
) -> tuple:
    r"""Trains the singular values of a spectral state with an optax optimizer.

    The gradient is $\nabla_\sigma \mathcal L(\mathrm{lift}(\sigma))$, the negated
    [`ReducedGradientFlow`][softmax_diag.ReducedGradientFlow]:
    $\nabla_{\sigma_l} = \frac{1}{K\sqrt n}\, s \odot \prod_{j\ne l}\sigma_j
    + \lambda_l \sigma_l$, $O(K \log K)$ per step.

    For an optimizer linear in the gradient history (`optax.sgd` with or without
    momentum or Nesterov, `optax.add_decayed_weights` chained with them), lifting the
    result gives [`train_full`][softmax_diag.train_full] from the lifted start, to
    round-off. For Adam and other entrywise-nonlinear optimizers it does not: the reduced
    run is then Adam on the singular values, a different algorithm from Adam on matrices.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM] (`width >= num_classes`).
    - `sv0`: `(σ_L, ..., σ_1)` at step 0, vectors of length `K` (tied Fourier pairs equal).
    - `optimizer`, `num_steps`, `every`: as in [`train_full`][softmax_diag.train_full].
    - `basis`: default `spectral_basis(K)`.

    **Returns:** a tuple of `depth` arrays of shape `(num_steps // every + 1, K)`,
    step 0 first.
    """
    num_steps, every = _check(problem, optimizer, num_steps, every)
    basis = spectral_basis(problem.num_classes) if basis is None else basis
    field = ReducedGradientFlow(problem, basis)
    sv0 = check_tied("sv0", basis, check_sv(problem, sv0, "sv0"))
    return _train(field, sv0, optimizer, num_steps, every)
