"""The baseline a user would write instead: NumPy right-hand sides for `scipy.integrate`.

Same problem as the package (depth 2, one-hot cross-entropy, `n = 1`, no weight decay),
written independently: vectorised NumPy, no JAX. The reduced right-hand side uses a
hand-written fast Walsh-Hadamard transform, `O(K log K)`; the full one uses three
BLAS matrix products per evaluation, like the package.
"""

import time

import numpy as np
import scipy.integrate


def fwht(x: np.ndarray) -> np.ndarray:
    """Unnormalised Walsh-Hadamard transform `H_m x` (Sylvester order), a new array.

    In-place radix-2 butterflies on strided views: `log2(K)` stages of `O(K)` work.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    size = x.shape[-1]
    half = 1
    while half < size:
        view = x.reshape(-1, 2, half)
        lo, hi = view[:, 0, :], view[:, 1, :]
        diff = lo - hi
        lo += hi
        hi[...] = diff
        half *= 2
    return x


def reduced_rhs(num_classes: int):
    """`y = [a, b]` (length `2K`) -> `[da, db]`, the singular-value ODE in the Walsh basis.

    `phi = H (a b) / K`, `p = softmax(phi)` with the label entry `-sum_{x != 0} p_x`,
    `s = H p`, `da = -s b / K`, `db = -s a / K` (DESIGN.md 3).
    """
    k = num_classes

    def rhs(t, y):
        a, b = y[:k], y[k:]
        phi = fwht(a * b) / k
        e = np.exp(phi - phi.max())
        others = e[1:].sum()
        g = e / (e[0] + others)
        g[0] = -others / (e[0] + others)
        s = fwht(g)
        out = np.empty_like(y)
        np.multiply(s, b, out=out[:k])
        np.multiply(s, a, out=out[k:])
        out *= -1.0 / k
        return out

    return rhs


def full_rhs(num_classes: int, width: int):
    """`y = [vec W, vec H]` -> its time derivative, the gradient flow on `(W, H)`.

    `Z = W H`, `G = (softmax(Z) - I) / K` column-wise with the label entries computed as
    minus the sum of the other weights; `dW = -G H^T`, `dH = -W^T G`.
    """
    k, d = num_classes, width
    split = k * d
    diag = np.arange(k)

    def rhs(t, y):
        w, h = y[:split].reshape(k, d), y[split:].reshape(d, k)
        z = w @ h
        top = z.max(axis=0)
        label = z[diag, diag] - top
        z -= top[None, :]
        np.exp(z, out=z)
        z[diag, diag] = 0.0
        others = z.sum(axis=0)
        total = others + np.exp(label)
        z /= total[None, :] * k
        z[diag, diag] = -others / (total * k)
        out = np.empty_like(y)
        np.matmul(z, h.T, out=out[:split].reshape(k, d))
        np.matmul(w.T, z, out=out[split:].reshape(d, k))
        out *= -1.0
        return out

    return rhs


def solve(rhs, y0: np.ndarray, t1: float, rtol: float, atol: float):
    """`solve_ivp(method="DOP853")` from 0 to `t1`; returns `(y(t1), nfev, steps)`."""
    sol = scipy.integrate.solve_ivp(
        rhs, (0.0, float(t1)), y0, method="DOP853", rtol=rtol, atol=atol
    )
    if not sol.success:
        raise RuntimeError(f"scipy DOP853 failed: {sol.message}")
    return sol.y[:, -1], int(sol.nfev), len(sol.t) - 1


def rhs_time(rhs, y0: np.ndarray, seconds: float) -> float:
    """Time of one right-hand-side call: a Python loop of at least `seconds`."""
    rhs(0.0, y0)
    calls, start = 0, time.perf_counter()
    while True:
        rhs(0.0, y0)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and calls >= 3:
            return elapsed / calls
