"""The static description of an unconstrained-features-model training problem."""

import math

import equinox as eqx

from ._checks import check_int

LOSSES = ("ce", "mse")


class UFM(eqx.Module):
    r"""A deep linear unconstrained features model trained by gradient flow.

    Logits $Z = W_L \cdots W_1 \in \mathbb{R}^{K \times N}$ for $N = nK$ standard-basis
    inputs (sample $i$ has class $\lfloor i / n \rfloor$), loss averaged over samples
    plus weight decay:

    $$\mathcal{L} = \frac1N \sum_{i} \ell(Z_{:,i}, y_i)
      + \sum_l \frac{\lambda_l}{2} \lVert W_l \rVert_F^2 .$$

    Parameters are ordered from the output layer to the input layer,
    `params = (W_L, ..., W_1)`: `W_L` is `(K, d)`, middle layers `(d, d)`, `W_1` is
    `(d, N)`. For `depth=2` that is `(W, H)`.

    All fields are static: a `UFM` is a hashable description, never traced.

    **Arguments:**

    - `num_classes`: `K >= 2`.
    - `width`: hidden width `d >= 1` (the reduced ODE needs `d >= K`).
    - `depth`: number of weight matrices `L >= 2`.
    - `loss`: `"ce"` (cross-entropy, optionally label-smoothed) or `"mse"`
        ($\ell(z, y) = \frac12 \lVert z - e_y \rVert^2$).
    - `label_smoothing`: $\epsilon \in [0, 1)$, CE against $(1-\epsilon) e_y + \epsilon/K$.
    - `weight_decay`: one $\lambda \ge 0$ for all layers, or a tuple of `depth` values
        ordered like `params`.
    - `samples_per_class`: `n >= 1`.

    **Example:**

    ```python
    problem = softmax_diag.UFM(16, 32)          # K = 16 classes, width 32, CE
    ```
    """

    num_classes: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    loss: str = eqx.field(static=True)
    label_smoothing: float = eqx.field(static=True)
    weight_decay: tuple[float, ...] = eqx.field(static=True)
    samples_per_class: int = eqx.field(static=True)

    def __init__(
        self,
        num_classes: int,
        width: int,
        *,
        depth: int = 2,
        loss: str = "ce",
        label_smoothing: float = 0.0,
        weight_decay: float | tuple[float, ...] = 0.0,
        samples_per_class: int = 1,
    ):
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        self.width = check_int("width", width, minimum=1)
        self.depth = check_int("depth", depth, minimum=2)
        self.samples_per_class = check_int("samples_per_class", samples_per_class, minimum=1)
        if loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}, got {loss!r}.")
        self.loss = loss
        self.label_smoothing = _check_real("label_smoothing", label_smoothing)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(
                f"`label_smoothing` must be in [0, 1), got {self.label_smoothing}."
            )
        if self.label_smoothing and loss != "ce":
            raise ValueError(
                "`label_smoothing` applies to `loss='ce'` only; set it to 0 for "
                f"loss={loss!r}."
            )
        if isinstance(weight_decay, (tuple, list)):
            decay = tuple(_check_real("weight_decay", w) for w in weight_decay)
            if len(decay) != self.depth:
                raise ValueError(
                    f"`weight_decay` has {len(decay)} values but depth={self.depth}; "
                    "give one value per layer (ordered like params) or a single float."
                )
        else:
            decay = (_check_real("weight_decay", weight_decay),) * self.depth
        if any(w < 0 for w in decay):
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
        self.weight_decay = decay

    @property
    def num_samples(self) -> int:
        """`N = n K`."""
        return self.num_classes * self.samples_per_class

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes of `(W_L, ..., W_1)`."""
        d, k = self.width, self.num_classes
        return ((k, d),) + ((d, d),) * (self.depth - 2) + ((d, self.num_samples),)

    @property
    def reduced_rate(self) -> float:
        r"""$1 / (K \sqrt{n})$, the rate in front of every reduced gradient."""
        return 1.0 / (self.num_classes * math.sqrt(self.samples_per_class))


def _check_real(name: str, value) -> float:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number, got the bool {value!r}.")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy / JAX scalars
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a real number, got {value!r}.") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    return value


def check_problem(problem) -> UFM:
    """`problem` is a [`UFM`][softmax_diag.UFM]; returns it."""
    if not isinstance(problem, UFM):
        raise TypeError(
            f"`problem` must be a softmax_diag.UFM, got {type(problem).__name__}; build "
            "one with softmax_diag.UFM(num_classes, width)."
        )
    return problem
