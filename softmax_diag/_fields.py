r"""The two gradient-flow vector fields, as diffrax-ready `eqx.Module`s.

- [`FullGradientFlow`][softmax_diag.FullGradientFlow]: $\dot W_l = -\nabla_{W_l}\mathcal{L}$
  on the weight matrices (three matrix products at depth 2).
- [`ReducedGradientFlow`][softmax_diag.ReducedGradientFlow]: the same flow on singular
  values under Hadamard initialization, $O(K \log K)$ per evaluation.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._bases import FourierBasis, WalshBasis, check_basis, spectral_basis
from ._losses import labels_mask, logit_gradient, product
from ._problem import UFM, check_problem


class FullGradientFlow(eqx.Module):
    r"""Gradient flow on the weight matrices: $\dot W_l = -\nabla_{W_l} \mathcal{L}$.

    With $G = \frac1N \partial_Z \sum_i \ell(Z_{:,i}, y_i)$ (for CE, $G = (\mathrm{softmax}(Z)
    - Y) / N$, the label entries computed as minus the sum of the other weights),

    $$\nabla_{W_l} \mathcal{L} = (W_L \cdots W_{l+1})^T\, G\, (W_{l-1} \cdots W_1)^T
      + \lambda_l W_l ,$$

    which at depth 2 reads $\dot W = -G H^T - \lambda W$, $\dot H = -W^T G - \lambda H$.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM].

    Call as `field(t, params, args)` with `params = (W_L, ..., W_1)`; usable as
    `diffrax.ODETerm(field)`.
    """

    problem: UFM

    def __call__(self, t, y, args):
        problem = self.problem
        # suffix[i] = y[i] @ ... @ y[-1]: what layer i-1 sees from below.
        suffix = [y[-1]]
        for w in reversed(y[:-1]):
            suffix.insert(0, w @ suffix[0])
        logits = suffix[0]
        g = logit_gradient(problem, logits, labels_mask(problem)) / problem.num_samples
        grads = []
        upstream = g  # (W_L ... W_{l+1})^T G, built from the output layer down
        for i, w in enumerate(y):
            grads.append(upstream if i == len(y) - 1 else upstream @ suffix[i + 1].T)
            if i < len(y) - 1:
                # Materialise W^T (an O(K d) copy) so that the product is a plain GEMM:
                # XLA:CPU folds a bare `w.T` into a transposed-operand float64 GEMM that
                # runs 1.3-2x slower (benchmarks/RESULTS.md).
                upstream = jax.lax.optimization_barrier(w.T) @ upstream
        return tuple(
            -gr - lam * w if lam else -gr
            for gr, w, lam in zip(grads, y, problem.weight_decay)
        )


class ReducedGradientFlow(eqx.Module):
    r"""Gradient flow on singular values under Hadamard (spectral) initialization.

    With $W_L = Q \operatorname{diag}(\sigma_L) P_{L-1}^T, \dots,
    W_1 = P_1 \operatorname{diag}(\sigma_1) Q_{\mathrm{in}}^T$ and
    $z = \prod_l \sigma_l$, the logits are group-circulant and every layer stays of this
    form. The singular values follow

    $$\dot\sigma_l = -\frac{1}{K\sqrt n}\, s \odot \prod_{j \ne l} \sigma_j
      - \lambda_l \sigma_l ,$$

    where $s$ is the spectrum of $K\, \partial_Z \ell$: the logits of one sample are
    $\varphi = \mathrm{column}(z / \sqrt n)$ (for Walsh, $\varphi = H_m z / (K \sqrt n)$),
    $g = \partial \ell(\varphi, 0) / \partial \varphi$, and $s = \mathrm{spectrum}(g)$ (for
    Walsh and CE, $s = H_m \operatorname{softmax}(\varphi) - \mathbf 1$). Two fast
    transforms per evaluation: $O(K \log K)$, no dense $K \times K$ product.

    At depth 2 with `sv = (a, b)`: $\dot a = -\frac1K s \odot b$, $\dot b = -\frac1K s \odot a$.

    The label entry of $g$ is minus the sum of the other softmax weights, so $s$ keeps
    full accuracy relative to the loss as the loss goes to zero.

    **Arguments:**

    - `problem`: the [`UFM`][softmax_diag.UFM]; needs `width >= num_classes`.
    - `basis`: a Walsh or Fourier basis of size `K` (default: `spectral_basis(K)`).
    """

    problem: UFM
    basis: WalshBasis | FourierBasis = None  # pyright: ignore[reportAssignmentType]

    def __post_init__(self):
        if self.basis is None:
            self.basis = spectral_basis(self.problem.num_classes)

    def __check_init__(self):
        check_reducible(self.problem, self.basis)

    def __call__(self, t, y, args):
        problem, basis = self.problem, self.basis
        z = product(y)
        if problem.samples_per_class > 1:
            z = z / problem.samples_per_class**0.5
        first = jnp.arange(problem.num_classes) == 0
        if problem.loss == "mse":
            # The logit gradient phi - e_0 is linear in phi = column(z): its spectrum is
            # z - 1 exactly, no transform needed.
            s = z - 1.0
        else:
            # Cross-entropy in its cheapest exact form: with e = exp(phi - max phi) and
            # t = spectrum(e with e_0 zeroed) (so t_0 = sum_{x != 0} e_x),
            #   spectrum(softmax(phi) - e_0) = (t - t_0) / (t_0 + e_0),
            # because a character is 1 at x = 0. No normalisation pass before the
            # transform, and the label entry is never formed as 1 - pi_0: t - t_0 sums
            # positive weights, so s keeps full relative accuracy as the loss vanishes.
            phi = basis.column(z)
            e = jnp.exp(phi - jax.lax.stop_gradient(jnp.max(phi, axis=-1, keepdims=True)))
            spec = basis.spectrum(jnp.where(first, 0.0, e))
            others = spec[..., :1]
            s = (spec - others) / (others + e[..., :1])
            eps = problem.label_smoothing
            if eps:  # smoothing adds eps (e_0 - 1/K) to g: spectrum eps (1 - [k = 0])
                s = s + jnp.where(first, 0.0, eps)
        out = []
        for i, (sigma, lam) in enumerate(zip(y, problem.weight_decay)):
            others = y[:i] + y[i + 1 :]  # leave-one-out product, no division by zero
            rate = -problem.reduced_rate * s * product(others)
            out.append(rate - lam * sigma if lam else rate)
        return tuple(out)


def check_reducible(problem: UFM, basis) -> None:
    problem = check_problem(problem)
    check_basis(basis, problem.num_classes)
    if problem.width < problem.num_classes:
        raise ValueError(
            f"The reduced ODE needs width >= num_classes (one hidden direction per "
            f"mode), got width={problem.width} < K={problem.num_classes}. Increase "
            "`width`, or solve the full ODE with `solve_full`, which takes any width."
        )
