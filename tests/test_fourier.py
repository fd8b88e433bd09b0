"""The real Fourier basis, checked against an independently built dense matrix.

Also documents why arbitrary Hadamard matrices are refused: a Paley matrix of order 12
(orthogonal, constant first column) does not keep the full ODE diagonal, while the Fourier
basis of the same order does.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softmax_diag as sd

# 2..40 covers even and odd K, primes (2, 3, 5, 7, 11, 13, ..., 37) and powers of two.
KS = list(range(2, 41))

# Orthonormality and FFT-vs-dense agreement: both sides are O(K) sums of O(1) terms in
# float64, so round-off is a few 1e-16 for K <= 40; 1e-13 leaves two orders of margin and
# still catches any wrong sign, scale or column order (errors of order 1e-1).
TOL = 1e-13


def reference_fourier(k: int) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """Dense real DFT basis built from its definition, with a label per column.

    Columns: constant 1/sqrt(K); for f = 1, ..., ceil(K/2) - 1 the pair
    sqrt(2/K) cos(2 pi f x / K), sqrt(2/K) sin(2 pi f x / K); for even K the
    alternating column (-1)^x / sqrt(K).
    """
    x = np.arange(k)
    cols = [np.full(k, 1.0 / np.sqrt(k))]
    labels = [("const", 0)]
    for f in range(1, (k + 1) // 2):
        cols.append(np.sqrt(2.0 / k) * np.cos(2 * np.pi * f * x / k))
        labels.append(("cos", f))
        cols.append(np.sqrt(2.0 / k) * np.sin(2 * np.pi * f * x / k))
        labels.append(("sin", f))
    if k % 2 == 0:
        cols.append((-1.0) ** x / np.sqrt(k))
        labels.append(("alt", k // 2))
    return np.stack(cols, axis=1), labels


def tied_random(rng, basis, shape) -> np.ndarray:
    """Random values with every Fourier pair tied (the sine slot copies the cosine)."""
    v = rng.normal(size=shape)
    for c, s in basis.pairs:
        v[..., s] = v[..., c]
    return v


def is_power_of_two(k: int) -> bool:
    return k & (k - 1) == 0


@functools.cache
def basis_outputs(k: int) -> tuple[dict, dict]:
    """Random inputs and everything the tests read from `fourier_basis(k)`.

    One compilation per K (~0.2 s): op-by-op dispatch would compile every FFT shape
    separately, ~1 s per K.
    """
    basis = sd.fourier_basis(k)
    rng = np.random.default_rng(k)
    sym = rng.normal(size=k)
    inputs = {
        "x": rng.normal(size=k),
        "xb": rng.normal(size=(3, k)),  # leading batch axis: transforms act on the last axis
        "z": tied_random(rng, basis, (2, k)),
        "sym": 0.5 * (sym + sym[(-np.arange(k)) % k]),  # symmetric column c(x) = c(-x)
    }

    @jax.jit
    def run(x, xb, z, sym):
        col = basis.column(z)
        return {
            "matrix": basis.matrix,
            "transform_x": basis.transform(x),
            "inverse_x": basis.inverse(x),
            "transform_xb": basis.transform(xb),
            "inverse_xb": basis.inverse(xb),
            "column_z": col,
            "spectrum_column_z": basis.spectrum(col),
            "spectrum_sym": basis.spectrum(sym),
        }

    out = run(*(jnp.asarray(inputs[n]) for n in ("x", "xb", "z", "sym")))
    return inputs, jax.tree.map(np.asarray, out)


@pytest.mark.parametrize("k", KS)
def test_matrix_is_the_real_dft_in_documented_order(k):
    q = basis_outputs(k)[1]["matrix"]
    ref, _ = reference_fourier(k)
    assert q.shape == (k, k)
    assert q.dtype == np.float64
    np.testing.assert_allclose(q.T @ q, np.eye(k), rtol=0, atol=TOL)
    np.testing.assert_allclose(q[:, 0], np.full(k, 1.0 / np.sqrt(k)), rtol=0, atol=TOL)
    # Column order: constant, (cos f, sin f) for f = 1.., then the alternating column.
    np.testing.assert_allclose(q, ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("k", KS)
def test_pairs_are_the_cos_sin_columns_of_each_frequency(k):
    _, labels = reference_fourier(k)
    expected = tuple(
        (labels.index(("cos", f)), labels.index(("sin", f))) for f in range(1, (k + 1) // 2)
    )
    assert sd.fourier_basis(k).pairs == expected
    assert len(expected) == (k - 1) // 2


@pytest.mark.parametrize("k", KS)
def test_transform_and_inverse_match_the_dense_matrix(k):
    inputs, out = basis_outputs(k)
    q, _ = reference_fourier(k)
    x, xb = inputs["x"], inputs["xb"]
    np.testing.assert_allclose(out["transform_x"], q.T @ x, rtol=0, atol=TOL)
    np.testing.assert_allclose(out["inverse_x"], q @ x, rtol=0, atol=TOL)
    np.testing.assert_allclose(out["transform_xb"], xb @ q, rtol=0, atol=TOL)  # rows: Q^T x
    np.testing.assert_allclose(out["inverse_xb"], xb @ q.T, rtol=0, atol=TOL)  # rows: Q c
    assert out["transform_xb"].dtype == np.float64
    assert out["inverse_xb"].dtype == np.float64


@pytest.mark.parametrize("k", KS)
def test_column_and_spectrum_of_tied_spectra(k):
    """Q diag(z) Q^T is symmetric circulant with column 0 = column(z); spectrum inverts it."""
    inputs, out = basis_outputs(k)
    q, _ = reference_fourier(k)
    z, col = inputs["z"], out["column_z"]
    assert col.shape == (2, k)
    idx = (np.arange(k)[:, None] - np.arange(k)[None, :]) % k  # circulant: C_jk = c(j - k)
    for zi, ci in zip(z, col):
        dense = q @ np.diag(zi) @ q.T
        np.testing.assert_allclose(dense, ci[idx], rtol=0, atol=TOL)
        np.testing.assert_allclose(ci, ci[(-np.arange(k)) % k], rtol=0, atol=TOL)  # symmetric
    np.testing.assert_allclose(out["spectrum_column_z"], z, rtol=0, atol=TOL)
    # On a symmetric column c: spectrum(c) are the eigenvalues, diag(Q^T circ(c) Q), and the
    # matrix is diagonal in Q (so the spectrum is tied).
    sym = inputs["sym"]
    diagonalised = q.T @ sym[idx] @ q
    np.testing.assert_allclose(diagonalised, np.diag(out["spectrum_sym"]), rtol=0, atol=TOL)


@pytest.mark.parametrize("k", KS)
def test_spectral_basis_is_walsh_for_powers_of_two_else_fourier(k):
    basis = sd.spectral_basis(k)
    if is_power_of_two(k):
        assert isinstance(basis, sd.WalshBasis)
        assert basis == sd.walsh_basis(k)
    else:
        assert isinstance(basis, sd.FourierBasis)
        assert basis == sd.fourier_basis(k)
    assert basis.size == k


# --- Why other Hadamard matrices are refused ----------------------------------------------


def paley_hadamard_12() -> np.ndarray:
    """Paley I construction for q = 11 (q = 3 mod 4): H = I + S, S = [[0, 1^T], [-1, J]]
    with J the Jacobsthal matrix J_ij = chi(j - i), chi the quadratic character mod 11."""
    q = 11
    residues = {(x * x) % q for x in range(1, q)}

    def chi(x: int) -> int:
        x %= q
        return 0 if x == 0 else (1 if x in residues else -1)

    jac = np.array([[chi(j - i) for j in range(q)] for i in range(q)], dtype=np.float64)
    s = np.zeros((q + 1, q + 1))
    s[0, 1:] = 1.0
    s[1:, 0] = -1.0
    s[1:, 1:] = jac
    return np.eye(q + 1) + s


def off_diagonal(m: np.ndarray) -> float:
    return float(np.max(np.abs(m - np.diag(np.diag(m)))))


def test_paley_hadamard_leaves_the_diagonal_fourier_does_not(getkey):
    h = paley_hadamard_12()
    np.testing.assert_array_equal(h @ h.T, 12 * np.eye(12))  # integer arithmetic: exact
    h = h * np.sign(h[:, :1])  # rows times the sign of their first entry: column 0 = +1
    np.testing.assert_array_equal(h[:, 0], np.ones(12))
    np.testing.assert_array_equal(h @ h.T, 12 * np.eye(12))
    paley = h / np.sqrt(12.0)
    fourier = basis_outputs(12)[1]["matrix"]  # fourier_basis(12).matrix, checked above

    problem = sd.UFM(12, 12)
    frame = np.asarray(sd.random_frame(getkey(), 12, 12))
    ts = jnp.array([0.0, 1.0, 10.0])
    rng = np.random.default_rng(12)
    fb = sd.fourier_basis(12)
    off = {}
    for name, q in (("paley", paley), ("fourier", fourier)):
        a = rng.uniform(0.2, 1.5, 12)
        b = rng.uniform(0.2, 1.5, 12)
        for c, s in fb.pairs:  # tied pairs (needed by Fourier, harmless for Paley)
            a[s], b[s] = a[c], b[c]
        w0 = q @ np.diag(a) @ frame.T
        h0 = frame @ np.diag(b) @ q.T
        sol = sd.solve_full(problem, (jnp.asarray(w0), jnp.asarray(h0)), ts, rtol=1e-12, atol=1e-12)
        off[name] = [
            max(
                off_diagonal(q.T @ np.asarray(sol.ys[0][i]) @ frame),
                off_diagonal(frame.T @ np.asarray(sol.ys[1][i]) @ q),
            )
            for i in range(len(ts))
        ]
    # At t = 0 both start diagonal up to round-off of the dense products (~1e-16).
    assert off["paley"][0] < 1e-14 and off["fourier"][0] < 1e-14
    # Paley: the singular vectors move, the off-diagonal part grows far above round-off
    # (measured 4e-4 at t = 1 and 1e-2 at t = 10); 1e-6 is 10 orders above round-off.
    assert off["paley"][1] > 1e-6 and off["paley"][2] > 1e-6
    # Fourier: stays diagonal to round-off (measured <= 7e-16); 1e-12 is the tolerance
    # level of the solver, far below any real drift.
    assert max(off["fourier"]) < 1e-12


# --- Refusals --------------------------------------------------------------------------------


def untied_sv(k: int, depth: int = 2) -> tuple:
    basis = sd.fourier_basis(k)
    rng = np.random.default_rng(7)
    sv = [tied_random(rng, basis, (k,)) ** 2 + 0.2 for _ in range(depth)]
    c, s = basis.pairs[0]
    sv[1][s] = sv[1][c] + 0.1  # break one pair in one layer
    return tuple(jnp.asarray(v) for v in sv)


def test_untied_pairs_are_refused_by_lift_init_and_reduced_solve(getkey):
    k = 5
    problem = sd.UFM(k, k + 1)
    basis = sd.fourier_basis(k)
    sv = untied_sv(k)
    frames = (sd.random_frame(getkey(), k + 1, k),)
    with pytest.raises(ValueError, match="tied"):
        sd.lift(problem, sv, basis, frames)
    with pytest.raises(ValueError, match="tied"):
        sd.hadamard_init(problem, sv, key=getkey(), basis=basis)
    with pytest.raises(ValueError, match="tied"):
        sd.hadamard_init(problem, sv, key=getkey())  # default basis for K = 5 is Fourier
    ts = jnp.array([0.0, 1.0])
    with pytest.raises(ValueError, match="tied"):
        sd.solve_reduced(problem, sv, ts, basis=basis)
    with pytest.raises(ValueError, match="tied"):
        sd.solve_reduced(problem, sv, ts)


def test_walsh_basis_refuses_non_power_of_two():
    with pytest.raises(ValueError, match="fourier_basis"):
        sd.walsh_basis(12)


def test_paley_columns_are_not_closed_under_products():
    """The premise of the refusal: the entrywise product of two Paley columns is not +- a
    column (so the softmax cannot stay diagonal), while for Walsh it always is."""
    h = paley_hadamard_12()
    h = h * np.sign(h[:, :1])

    def products_closed(m: np.ndarray) -> bool:
        k = m.shape[0]
        # +-1 columns: prod = +- column j  <=>  |column_j . prod| = k (exact integers).
        return all(
            np.max(np.abs(m.T @ (m[:, i] * m[:, j]))) == k for i in range(k) for j in range(k)
        )

    assert not products_closed(h)
    assert products_closed(np.rint(np.asarray(sd.walsh_basis(8).matrix) * np.sqrt(8.0)))
