"""solve_batch: batched == one at a time, sharded == unsharded, compile once, bad input.

In-process tests use the shapes of `tests/test_study.py` (K = 4, batches of 3 on the 4
simulated devices, so the padding path runs): run in one process, the two files share
compilations.
"""

import os
import subprocess
import sys
import textwrap

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import softmax_diag as sd
from softmax_diag import _sharded
from softmax_diag._study_init import save_times

K, B = 4, 3
PROBLEM = sd.UFM(K, K)
TS = jnp.asarray(save_times(20.0, 3))
# At most 20 steps are needed up to t = 20; the small step limit lets the failure test
# reuse the compiled solves (max_steps is static, the save times are not).
TOL = dict(rtol=1e-10, atol=1e-10, max_steps=48)
# Global error bound for solves whose step sequences differ (shared vs per-sample steps,
# different device slices): 100x the local tolerance, for |y| <= ~3 up to t = 20.
SHARED_TOL = dict(rtol=1e-8, atol=1e-8)


def stacked(ys):
    """tuple of (B, T, K) -> (B, depth, T, K) numpy."""
    return np.stack([np.asarray(y) for y in ys], axis=1)


@pytest.fixture(scope="module")
def sv0():
    return sd.initial_conditions(PROBLEM, np.arange(B), seed=0)


@pytest.fixture(scope="module")
def loop(sv0):
    sols = [sd.solve_reduced(PROBLEM, tuple(v[i] for v in sv0), TS, **TOL) for i in range(B)]
    return np.stack([np.stack([np.asarray(y) for y in s.ys]) for s in sols]), np.array(
        [int(s.stats["num_steps"]) for s in sols]
    )


def test_vmap_mode_equals_loop(sv0, loop):
    """Per-sample steps: the same steps as single solves (4 devices, 3 samples padded to
    8: at least two per device, see `_sharded._layout`)."""
    expected, steps = loop
    sol = sd.solve_batch(PROBLEM, sv0, TS, **TOL)  # default: vmap
    assert len(jax.devices()) == 4
    np.testing.assert_array_equal(np.asarray(sol.stats["num_steps"]), steps)
    # Same steps; only XLA's batched reductions may round differently.
    np.testing.assert_allclose(stacked(sol.ys), expected, rtol=1e-12, atol=1e-12)
    assert sol.ts.shape == (B, len(TS)) and np.all(np.asarray(sol.ts) == np.asarray(TS))
    assert np.all(np.asarray(sol.result == diffrax.RESULTS.successful))


def test_shared_mode_equals_loop(sv0, loop):
    sol = sd.solve_batch(PROBLEM, sv0, TS, batching="shared", **TOL)
    np.testing.assert_allclose(stacked(sol.ys), loop[0], **SHARED_TOL)
    assert sol.ys[0].shape == (B, len(TS), K) and sol.stats["num_steps"].shape == (B,)


def test_compiles_once(sv0, monkeypatch):
    traces = []
    original = _sharded._shared_solve
    monkeypatch.setattr(
        _sharded, "_shared_solve", lambda *a: traces.append(1) or original(*a)
    )
    sd.solve_batch(PROBLEM, sv0, TS, batching="shared", **TOL)  # traced unless already
    traces.clear()
    # New save times and tolerances are array values: no new trace.
    sd.solve_batch(PROBLEM, sv0, TS * 0.5, batching="shared", **dict(TOL, rtol=1e-9, atol=1e-9))
    assert traces == []


def test_failures_and_jit(sv0):
    long = jnp.array([0.0, 1.0, 1e4, 1e8])  # about 87 steps > max_steps = 48
    with pytest.raises(RuntimeError, match="3 of 3 solves stopped early.*max_steps"):
        sd.solve_batch(PROBLEM, sv0, long, **TOL)
    sol = sd.solve_batch(PROBLEM, sv0, long, throw=False, **TOL)
    assert not np.any(np.asarray(sol.result == diffrax.RESULTS.successful))
    assert np.all(np.isinf(np.asarray(sol.ys[0][:, -1])))  # t1 not reached
    assert np.all(np.isfinite(np.asarray(sol.ys[0][:, :2])))  # what was computed is kept
    # Pure JAX: traceable under jit (lowered, not compiled: that would cost seconds).
    for options in (dict(log_time=True), dict(batching="shared")):
        jax.jit(lambda y, ts, o=options: sd.solve_batch(PROBLEM, y, ts, **o, **TOL).ys).lower(
            sv0, TS
        )


@pytest.mark.parametrize(
    "y0, kwargs, error, match",
    [
        (jnp.ones((B, K)), {}, TypeError, "tuple"),
        ((jnp.ones((B, K)),), {}, ValueError, "depth"),
        ((jnp.ones(K), jnp.ones(K)), {}, ValueError, "batch axis"),
        ((jnp.ones((B, K)), jnp.ones((B + 1, K))), {}, ValueError, "batch sizes"),
        ((jnp.ones((0, K)), jnp.ones((0, K))), {}, ValueError, "empty"),
        ((jnp.ones((B, K)), jnp.full((B, K), jnp.nan)), {}, ValueError, "NaN"),
        ((jnp.ones((B, K)),) * 2, dict(kind="dense"), ValueError, "kind"),
        ((jnp.ones((B, K)),) * 2, dict(batching="pmap"), ValueError, "batching"),
        ((jnp.ones((B, K)),) * 2, dict(kind="full"), ValueError, "kind='full'"),
        ((jnp.ones((B, K)),) * 2, dict(devices=[]), ValueError, "devices"),
        ((jnp.ones((B, K)),) * 2, dict(rtol=-1.0), ValueError, "rtol"),
        ((jnp.ones((B, K)),) * 2, dict(solver=diffrax.Euler()), TypeError, "solver"),
        ((jnp.ones((B, K)),) * 2, dict(microbatch=0), ValueError, "microbatch"),
        ((jnp.ones((B, K)),) * 2, dict(log_time=1), TypeError, "log_time"),
        ((jnp.ones((B, K)),) * 2, dict(max_steps=0), ValueError, "max_steps"),
    ],
)
def test_bad_input(y0, kwargs, error, match):
    with pytest.raises(error, match=match):
        sd.solve_batch(PROBLEM, y0, TS, **kwargs)


def test_untied_fourier_pair_refused():
    problem = sd.UFM(6, 6)
    with pytest.raises(ValueError, match="tied"):
        sd.solve_batch(problem, (jnp.arange(12.0).reshape(2, 6) + 1,) * 2, TS)


SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np
    jax.config.update("jax_enable_x64", True)
    import softmax_diag as sd
    data = np.load(sys.argv[1])
    out = {"devices": np.array(len(jax.devices()))}
    for batching in ("vmap", "shared"):
        sol = sd.solve_batch(sd.UFM(4, 4), (data["a"], data["b"]), data["ts"],
                             batching=batching, rtol=1e-10, atol=1e-10, microbatch=2)
        out[batching] = np.stack([np.asarray(y) for y in sol.ys], axis=1)
    np.savez(sys.argv[2], **out)
    """
)


def test_one_device_subprocess_agrees_with_four_devices(sv0, tmp_path):
    """This process has 4 forced devices (3 samples padded to one per device, two in vmap
    mode); a subprocess with `--xla_force_host_platform_device_count=1` solves the same
    batch in two microbatches of 2 (`jax.lax.map`, padded to 4). The 4-device record in a
    study's manifest is checked by the SIGKILL test of tests/test_study.py."""
    assert len(jax.devices()) == 4, "tests/conftest.py forces 4 CPU devices"
    np.savez(tmp_path / "in.npz", a=sv0[0], b=sv0[1], ts=TS)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    one = np.load(tmp_path / "out.npz")
    assert int(one["devices"]) == 1
    four = {b: stacked(sd.solve_batch(PROBLEM, sv0, TS, batching=b, **TOL).ys)
            for b in ("vmap", "shared")}
    np.testing.assert_array_equal(four["vmap"], one["vmap"])  # per-sample steps: bitwise
    np.testing.assert_allclose(four["shared"], one["shared"], **SHARED_TOL)
    assert not np.array_equal(four["shared"], one["shared"])  # the slices stepped apart
