r"""Per-sample losses and their logit gradients, written for full relative accuracy.

Every loss here is permutation-equivariant: relabelling classes permutes the logits.
That is all the reduction needs: the reduced field only sees the gradient of the loss
of one column, and the full field applies the same function to every column.

Cross-entropy near zero loss: $1 - \pi_y$ is computed as $\sum_{x \ne y} \pi_x$ (a sum
of positive weights), never as `1 - pi_y`, and the loss as
$\operatorname{softplus}(\operatorname{logsumexp}_{x \ne y}(z_x - z_y))$, so both keep
full relative accuracy as the loss goes to zero.
"""

import jax
import jax.numpy as jnp

from ._problem import UFM


def logit_gradient(problem: UFM, logits, labels, axis: int = 0):
    r"""$\partial \ell(z, y) / \partial z$ for every sample, classes along `axis`.

    `labels` is a boolean one-hot mask shaped like `logits`.

    - CE with smoothing $\epsilon$: $\pi - (1 - \epsilon) e_y - \epsilon / K$, where the
      label entry is computed as $-\sum_{x \ne y} \pi_x + \epsilon (K - 1) / K$.
    - MSE: $z - e_y$.
    """
    if problem.loss == "mse":
        return logits - labels.astype(logits.dtype)
    num_classes = logits.shape[axis]
    off_label = jnp.where(labels, 0.0, jax.nn.softmax(logits, axis=axis))
    eps = problem.label_smoothing
    at_label = -jnp.sum(off_label, axis=axis, keepdims=True)
    if eps:
        return jnp.where(
            labels, at_label + eps * (num_classes - 1) / num_classes, off_label - eps / num_classes
        )
    return jnp.where(labels, at_label, off_label)


def sample_losses(problem: UFM, logits, labels, axis: int = 0):
    r"""$\ell(z, y)$ for every sample, classes along `axis` (reduced over `axis`).

    CE: $-\log \pi_y = \operatorname{softplus}(r)$ with
    $r = \operatorname{logsumexp}_{x \ne y}(z_x - z_y)$; label smoothing adds
    $\epsilon\,(z_y - \bar z)$.
    """
    if problem.loss == "mse":
        return 0.5 * jnp.sum((logits - labels.astype(logits.dtype)) ** 2, axis=axis)
    at_label = jnp.sum(jnp.where(labels, logits, 0.0), axis=axis, keepdims=True)
    others = jnp.where(labels, -jnp.inf, logits - at_label)
    nll = jax.nn.softplus(jax.nn.logsumexp(others, axis=axis))
    eps = problem.label_smoothing
    if eps:
        mean = jnp.mean(logits, axis=axis, keepdims=True)
        nll = nll + eps * jnp.squeeze(at_label - mean, axis=axis)
    return nll


def labels_mask(problem: UFM):
    """Boolean one-hot `(K, N)`: sample `i` has class `i // n`."""
    classes = jnp.arange(problem.num_samples) // problem.samples_per_class
    return jnp.arange(problem.num_classes)[:, None] == classes[None, :]


def weight_decay_penalty(problem: UFM, arrays):
    """$\\sum_l \\frac{\\lambda_l}{2} \\lVert A_l \\rVert^2$ for matrices or singular values."""
    total = 0.0
    for lam, a in zip(problem.weight_decay, arrays):
        if lam:
            total = total + 0.5 * lam * jnp.sum(a**2)
    return total


def full_loss(problem: UFM, params):
    """The training loss of the full model, `params = (W_L, ..., W_1)`."""
    logits = product(params)
    return jnp.mean(sample_losses(problem, logits, labels_mask(problem))) + (
        weight_decay_penalty(problem, params)
    )


def reduced_loss(problem: UFM, sv, basis):
    """The same loss computed from singular values alone (every column alike)."""
    phi = basis.column(product(sv) / problem.samples_per_class**0.5)
    first = jnp.arange(problem.num_classes) == 0
    return sample_losses(problem, phi, first, axis=-1) + weight_decay_penalty(problem, sv)


def product(factors):
    """`factors[0] @ factors[1] @ ...` for matrices, elementwise for vectors."""
    out = factors[0]
    for f in factors[1:]:
        out = out @ f if f.ndim == 2 else out * f
    return out
