"""jaxtyping aliases shared by every module, with the same dimension names everywhere.

- `K`: number of classes (and of spectral modes),
- `d`: hidden width,
- `N`: number of samples, `N = n K` with `n` samples per class,
- `T`: number of saved times.
"""

from jaxtyping import Array, ArrayLike, Float

Vector = Float[Array, " K"]
Spectrum = Float[Array, " K"]
Matrix = Float[Array, "rows cols"]
Frame = Float[Array, "d K"]
Times = Float[ArrayLike, " T"]

# Singular values, one vector per layer ordered like `params` (output layer first).
SingularValues = tuple[Float[Array, " K"], ...]
# Weight matrices `(W_L, ..., W_1)`.
Params = tuple[Float[Array, "rows cols"], ...]
