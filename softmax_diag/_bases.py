"""Orthonormal character bases that diagonalize the softmax: Walsh and Fourier.

Both bases are the real characters of an abelian group of order `K` (`Z_2^m` for Walsh,
`Z_K` for Fourier). A matrix `Q diag(z) Q^T` is then *group-circulant*: its entry
`(j, k)` depends only on `j - k` in the group. Entrywise `exp`, column normalisation and
subtracting the one-hot identity all keep that form, which is why the softmax of such a
matrix is again diagonal in `Q` (see the theory page).

Why not any Hadamard matrix? The argument needs the entrywise product of two basis
columns to be (a multiple of) a basis column, which holds exactly for characters of a
group. A Paley Hadamard matrix of order 12 is orthogonal with a constant column, but
the product of two of its columns is not a column, so `softmax(Q diag(z) Q^T)` leaves the
diagonal and the singular vectors start to move. Such matrices are therefore not
offered; `tests/test_bases.py` shows the full ODE started from one leaving the diagonal.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import check_int, is_concrete


@jax.jit  # one compilation per shape when called eagerly; inlined under an outer jit
def fwht(x: Float[Array, "... K"]) -> Float[Array, "... K"]:
    r"""Unnormalised fast Walsh-Hadamard transform along the last axis: $H_m x$.

    $H_m$ is the $\pm 1$ Sylvester matrix, $(H_m)_{jk} = (-1)^{\mathrm{popcount}(j \wedge k)}$
    (natural order, as `scipy.linalg.hadamard`). Radix-4 butterflies: each pass over the
    data applies two of the `log2(K)` butterfly levels (8 additions per 4 entries), with
    one radix-2 pass at the largest stride when `log2(K)` is odd. $O(K \log K)$ additions
    in $\lceil \log_2(K) / 2 \rceil$ passes, no multiplication, no dense product.
    """
    size = x.shape[-1]
    batch = x.shape[:-1]
    half = 1
    while half < size:
        if 4 * half <= size:
            x = x.reshape(batch + (size // (4 * half), 4, half))
            x0, x1, x2, x3 = (x[..., k, :] for k in range(4))
            a, b, c, d = x0 + x1, x0 - x1, x2 + x3, x2 - x3
            x = jnp.stack([a + c, b + d, a - c, b - d], axis=-2)
            half *= 4
        else:
            x = x.reshape(batch + (size // (2 * half), 2, half))
            lo, hi = x[..., 0, :], x[..., 1, :]
            x = jnp.stack([lo + hi, lo - hi], axis=-2)
            half *= 2
    return x.reshape(batch + (size,))


class WalshBasis(eqx.Module):
    r"""The Walsh (Sylvester-Hadamard) basis $Q = H_m / \sqrt{K}$, $K = 2^m$.

    Column 0 is constant. $Q$ is symmetric and orthogonal, and
    $Q \operatorname{diag}(z) Q^T$ has entries $\varphi(j \oplus k)$ with
    $\varphi = H_m z / K$ (XOR-circulant). All maps are fast Walsh-Hadamard transforms.

    **Arguments:**

    - `size`: the number of classes `K`, a power of two.

    **Example:**

    ```python
    basis = softmax_diag.walsh_basis(8)
    coeffs = basis.transform(x)      # Q^T x, O(K log K)
    ```
    """

    size: int = eqx.field(static=True)

    def __check_init__(self):
        size = check_int("K", self.size, minimum=1)
        if size & (size - 1):
            lower = 1 << (size.bit_length() - 1)
            raise ValueError(
                f"The Walsh basis needs K to be a power of two (1, 2, 4, 8, ...), got "
                f"K={size} (nearest: {lower} or {2 * lower}). For other K use "
                "`softmax_diag.fourier_basis(K)`, or `spectral_basis(K)`, which picks "
                "for you."
            )

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """Tied column pairs: none for Walsh (every character is real)."""
        return ()

    @property
    def matrix(self) -> Float[Array, "K K"]:
        """The dense orthonormal `K x K` matrix `Q` (tests and small `K` only)."""
        return self.inverse(jnp.eye(self.size)).T

    def transform(self, x: Float[Array, "... K"]) -> Float[Array, "... K"]:
        """Coefficients in the basis, $Q^T x$, along the last axis."""
        return fwht(x) / math.sqrt(self.size)

    def inverse(self, c: Float[Array, "... K"]) -> Float[Array, "... K"]:
        """Synthesis $Q c$ along the last axis (equal to `transform` for Walsh)."""
        return fwht(c) / math.sqrt(self.size)

    def column(self, spectrum: Float[Array, "... K"]) -> Float[Array, "... K"]:
        r"""Column 0 of $Q \operatorname{diag}(\lambda) Q^T$: $H_m \lambda / K$."""
        return fwht(spectrum) / self.size

    def spectrum(self, column: Float[Array, "... K"]) -> Float[Array, "... K"]:
        r"""Eigenvalues $\lambda$ of the XOR-circulant matrix with column 0 `column`:
        $\lambda = H_m\, \mathrm{column}$ (the inverse of `column`)."""
        return fwht(column)


class FourierBasis(eqx.Module):
    r"""The real discrete Fourier basis for any $K \ge 1$.

    Columns, in order: the constant $1/\sqrt{K}$; for each frequency
    $f = 1, \dots, \lceil K/2 \rceil - 1$ the pair
    $\sqrt{2/K}\cos(2\pi f x / K)$, $\sqrt{2/K}\sin(2\pi f x / K)$; and, for even $K$, the
    alternating column $(-1)^x / \sqrt{K}$.

    A symmetric circulant matrix has one eigenvalue per frequency, shared by the cosine
    and the sine column of that frequency: $Q \operatorname{diag}(z) Q^T$ is circulant
    only when each pair carries equal values ("tied pairs", exposed as `pairs`).
    Transforms are real FFTs, $O(K \log K)$.

    **Arguments:**

    - `size`: the number of classes `K`.
    """

    size: int = eqx.field(static=True)

    def __check_init__(self):
        check_int("K", self.size, minimum=1)

    @property
    def num_pairs(self) -> int:
        """Number of tied cosine/sine pairs, `(K - 1) // 2`."""
        return (self.size - 1) // 2

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """`(cos_f, sin_f)` column indices for each frequency `f >= 1` below `K/2`."""
        return tuple((2 * f - 1, 2 * f) for f in range(1, self.num_pairs + 1))

    @property
    def matrix(self) -> Float[Array, "K K"]:
        """The dense orthonormal `K x K` matrix `Q` (tests and small `K` only)."""
        return self.inverse(jnp.eye(self.size)).T

    def _half(self, spectrum):
        """Per-mode values -> one value per frequency `0..K//2` (cos column of pairs)."""
        parts = [spectrum[..., :1], spectrum[..., 1 : 2 * self.num_pairs + 1 : 2]]
        if self.size % 2 == 0 and self.size > 1:
            parts.append(spectrum[..., -1:])
        return jnp.concatenate(parts, axis=-1)

    def _full(self, half):
        """One value per frequency -> per-mode values (pairs tied)."""
        pair_values = jnp.repeat(half[..., 1 : self.num_pairs + 1], 2, axis=-1)
        parts = [half[..., :1], pair_values]
        if self.size % 2 == 0 and self.size > 1:
            parts.append(half[..., -1:])
        return jnp.concatenate(parts, axis=-1)

    def transform(self, x: Float[Array, "... K"]) -> Float[Array, "... K"]:
        """Coefficients in the basis, $Q^T x$, along the last axis."""
        k = self.size
        spec = jnp.fft.rfft(x, axis=-1)
        cos = math.sqrt(2 / k) * spec.real[..., 1 : self.num_pairs + 1]
        sin = -math.sqrt(2 / k) * spec.imag[..., 1 : self.num_pairs + 1]
        pairs = jnp.stack([cos, sin], axis=-1).reshape(x.shape[:-1] + (-1,))
        parts = [spec.real[..., :1] / math.sqrt(k), pairs]
        if k % 2 == 0 and k > 1:
            parts.append(spec.real[..., -1:] / math.sqrt(k))
        return jnp.concatenate(parts, axis=-1).astype(x.dtype)

    def inverse(self, c: Float[Array, "... K"]) -> Float[Array, "... K"]:
        """Synthesis $Q c$ along the last axis."""
        k = self.size
        cos = c[..., 1 : 2 * self.num_pairs + 1 : 2]
        sin = c[..., 2 : 2 * self.num_pairs + 1 : 2]
        zero = jnp.zeros_like(c[..., :1])
        parts = [jax.lax.complex(math.sqrt(k) * c[..., :1], zero),
                 jax.lax.complex(math.sqrt(k / 2) * cos, -math.sqrt(k / 2) * sin)]
        if k % 2 == 0 and k > 1:
            parts.append(jax.lax.complex(math.sqrt(k) * c[..., -1:], zero))
        return jnp.fft.irfft(jnp.concatenate(parts, -1), n=k, axis=-1).astype(c.dtype)

    def column(self, spectrum: Float[Array, "... K"]) -> Float[Array, "... K"]:
        r"""Column 0 of $Q \operatorname{diag}(\lambda) Q^T$ for tied $\lambda$:
        $\varphi(x) = \frac1K \sum_f \lambda_f e^{2\pi i f x / K}$ (an inverse real FFT)."""
        half = self._half(spectrum)
        half = jax.lax.complex(half, jnp.zeros_like(half))
        return jnp.fft.irfft(half, n=self.size, axis=-1).astype(spectrum.dtype)

    def spectrum(self, column: Float[Array, "... K"]) -> Float[Array, "... K"]:
        r"""Eigenvalues of the symmetric circulant matrix with column 0 `column`:
        $\lambda_f = \sum_x \mathrm{column}(x) \cos(2\pi f x / K)$, repeated over pairs."""
        return self._full(jnp.fft.rfft(column, axis=-1).real).astype(column.dtype)


def walsh_basis(K: int) -> WalshBasis:
    """The Walsh basis for `K = 2^m` classes; see [`WalshBasis`][softmax_diag.WalshBasis]."""
    return WalshBasis(K)


def fourier_basis(K: int) -> FourierBasis:
    """The real Fourier basis for any `K`; see [`FourierBasis`][softmax_diag.FourierBasis]."""
    return FourierBasis(K)


def spectral_basis(K: int) -> WalshBasis | FourierBasis:
    """Walsh when `K` is a power of two (cheapest transform, no tied pairs), else Fourier."""
    K = check_int("K", K, minimum=1)
    return WalshBasis(K) if K & (K - 1) == 0 else FourierBasis(K)


def check_tied(name: str, basis, vectors) -> tuple:
    """Refuses singular values that differ inside a tied Fourier pair.

    Returns `vectors` (wrapped in `eqx.error_if` when they are traced).
    """
    if not basis.pairs:
        return tuple(vectors)
    idx = np.asarray(basis.pairs)
    checked = []
    for layer, v in enumerate(vectors):
        if not is_concrete(v):
            first, second = v[..., idx[:, 0]], v[..., idx[:, 1]]
            bad = jnp.abs(first - second) > 1e-12 * (1 + jnp.abs(first))
            checked.append(eqx.error_if(v, jnp.any(bad), f"`{name}` breaks a tied Fourier pair."))
            continue
        host = np.asarray(v)  # host check: `v` may be a constant captured inside a jit
        first, second = host[..., idx[:, 0]], host[..., idx[:, 1]]
        bad = np.abs(first - second) > 1e-12 * (1 + np.abs(first))
        if np.any(bad):
            pair = tuple(int(i) for i in idx[np.argwhere(bad)[0][-1]])
            raise ValueError(
                f"`{name}[{layer}]` differs inside the tied Fourier pair {pair} "
                "(the cosine and sine columns of one frequency). A symmetric "
                "circulant matrix has one eigenvalue per frequency, so the reduction "
                "holds only when both columns of a pair carry the same singular value; "
                "set them equal (e.g. copy the cosine value), or use K = 2^m with the "
                "Walsh basis, which has no pairs."
            )
        checked.append(v)
    return tuple(checked)


def check_basis(basis, num_classes: int):
    """`basis` is a Walsh or Fourier basis of size `num_classes`; returns it."""
    if not isinstance(basis, (WalshBasis, FourierBasis)):
        raise TypeError(
            "`basis` must come from walsh_basis, fourier_basis or spectral_basis, got "
            f"{type(basis).__name__}."
        )
    if basis.size != num_classes:
        raise ValueError(
            f"`basis` has size {basis.size} but the problem has num_classes={num_classes}; "
            f"build it with spectral_basis({num_classes})."
        )
    return basis
