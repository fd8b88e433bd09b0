#!/usr/bin/env python
"""Benchmarks: the reduced vs the full ODE, against scipy, against the floor, across K.

    python benchmarks/run.py [--quick | --smoke] [--json PATH] [--markdown PATH] [--plot PATH]
                             [--blas-threads N] [--from-json PATH]

One random Hadamard initialization per `K` (`d = K`, depth 2, one-hot cross-entropy,
float64, singular values uniform in [0.2, 1.5]), solved from `t = 0` to `t1` with
`rtol = atol = 1e-10` by

- `reduced`, `full`: `softmax_diag.solve_reduced` / `solve_full` (default solver,
  `diffrax.Dopri8`), wrapped in `jax.jit` and compiled ahead of time
  (`.lower(...).compile()`, timed separately as `compile_s`);
- `reduced_eager`: the same public call without `jax.jit` (host-side checks included);
- `scipy_reduced`, `scipy_full`: `scipy.integrate.solve_ivp(method="DOP853")` on the
  vectorised NumPy right-hand sides of `baselines.py`.

Every time is the median of interleaved repeats after a warm-up (the warm-up run also
gives steps, evaluations and the accuracy; a run under 1 s is preceded by an untimed run of
the same method, see `Method.measure`); ratios are medians of per-repeat ratios.
The floor is (number of vector-field evaluations) x (time of one evaluation inside a
jitted `lax.fori_loop`, or a Python loop for NumPy), timed in the same interleaved
rounds. Accuracy is the relative 2-norm deviation at `t1` from a tight reference:
`solve_reduced` with `Dopri8` at `rtol = atol = 1e-13`, lifted to matrices for the full
ODE (itself checked against scipy's DOP853 at `1e-13`).

`--markdown PATH` writes the tables between `<!-- BEGIN GENERATED -->` and
`<!-- END GENERATED -->`, keeping any text outside those markers; `--from-json PATH`
re-renders the markdown and plots from an earlier run without solving anything.
"""

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time


def _blas_threads(argv) -> str | None:
    """`--blas-threads N` must act before NumPy loads OpenBLAS: read it from argv now."""
    for i, arg in enumerate(argv):
        if arg == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
    return None


if _blas_threads(sys.argv) is not None:  # NumPy/scipy only: XLA has its own thread pool
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = _blas_threads(sys.argv)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402

import softmax_diag as sd  # noqa: E402
from softmax_diag._solve import _integrate  # noqa: E402  (only to count evaluations)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baselines  # noqa: E402
import report  # noqa: E402

TOL = 1e-10
WARM_BELOW_S = 1.0  # see `Method.measure`
REF_TOL = 1e-13  # the reference solve; 1e-12 above REF_TOL_MAX_K, where it costs minutes
REF_TOL_MAX_K = 2**16
SEED = 0
SOLVERS = {"Dopri8": diffrax.Dopri8, "Tsit5": diffrax.Tsit5, "Dopri5": diffrax.Dopri5}
# Evaluations per step of diffrax's FSAL Runge-Kutta methods (stages - 1), checked by
# counting at run time (`check_eval_formula`).
EVALS_PER_STEP = {"Dopri8": 13, "Tsit5": 6, "Dopri5": 6}

MODES = {
    # For the test: K = 8 only, two repeats; seconds, not minutes.
    "smoke": dict(
        full_K=(8,), full_K_long=(8,), reduced_K=(8,), horizons=("64K",),
        scipy_reduced_max_K=8, eager_max_K=0, repeats=2, slow_s=1e9, slow_repeats=2,
        floor_s=0.01, ref_check_max_K=16, wp_K=8, wp_tols=(1e-6, 1e-10),
        wp_solvers=("Dopri8", "Tsit5"), wp_full=False, count_evals=False,
    ),
    # About a minute: the full ODE at K = 8 and 128, the reduced up to 1024, every method.
    "quick": dict(
        full_K=(8, 128), full_K_long=(8, 128), reduced_K=(8, 128, 1024),
        horizons=("1e3", "64K"), scipy_reduced_max_K=1024, eager_max_K=128, repeats=5,
        slow_s=1e9, slow_repeats=5, floor_s=0.02, ref_check_max_K=1024, wp_K=128,
        wp_tols=(1e-6, 1e-8, 1e-10, 1e-12), wp_solvers=("Dopri8", "Tsit5"), wp_full=False,
        count_evals=True,
    ),
    # The sweep, 20-30 minutes on 2 cores (see RESULTS.md). Cases whose first
    # solve takes over 10 s get 3 repeats instead of 5. The full ODE at K = 1024 runs to
    # t1 = 1000 only (to 64 K it would take ~2 min per solve). scipy's reduced baseline
    # stops at 2^16 (a solve at 2^20 would take minutes); above, only its right-hand side
    # is timed and its solve time estimated (evaluations x one right-hand side).
    "full": dict(
        full_K=(8, 32, 128, 512, 1024), full_K_long=(8, 32, 128, 512),
        reduced_K=tuple(2**m for m in range(3, 21)), horizons=("1e3", "64K"),
        scipy_reduced_max_K=2**16, eager_max_K=1024, repeats=5, slow_s=10.0,
        slow_repeats=3, floor_s=0.1, ref_check_max_K=1024, wp_K=128,
        wp_tols=tuple(10.0**-e for e in range(6, 13)), wp_solvers=("Dopri8", "Tsit5", "Dopri5"),
        wp_full=True, count_evals=True,
    ),
}


# --------------------------------------------------------------------------- helpers


def timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


def rel_err(ys, ref) -> float:
    num = sum(float(np.sum((np.asarray(y) - np.asarray(r)) ** 2)) for y, r in zip(ys, ref))
    den = sum(float(np.sum(np.asarray(r) ** 2)) for r in ref)
    return math.sqrt(num / den)


def make_case(K: int, with_matrices: bool):
    problem = sd.UFM(K, K)
    rng = np.random.default_rng(SEED + K)
    sv0 = tuple(jnp.asarray(rng.uniform(0.2, 1.5, K)) for _ in range(2))
    basis = sd.walsh_basis(K)
    if not with_matrices:
        return problem, basis, sv0, None, None
    params0, _, frames = sd.hadamard_init(problem, sv0, key=jax.random.PRNGKey(SEED), basis=basis)
    return problem, basis, sv0, params0, frames


def compile_solve(kind, problem, basis, y0, t1, solver):
    """AOT-compiled `jit(solve_*)` taking `(y0, rtol, atol)`; returns (fn, compile_s)."""
    ts = jnp.array([t1])

    def fn(y0, rtol, atol):
        if kind == "reduced":
            sol = sd.solve_reduced(problem, y0, ts, basis=basis, rtol=rtol, atol=atol,
                                   solver=solver, max_steps=1_000_000)
        else:
            sol = sd.solve_full(problem, y0, ts, rtol=rtol, atol=atol, solver=solver,
                                max_steps=1_000_000)
        return tuple(y[-1] for y in sol.ys), sol.stats["num_steps"], sol.stats[
            "num_rejected_steps"]

    tol = jnp.asarray(TOL)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(y0, tol, tol).compile()
    return compiled, time.perf_counter() - start


def compile_eval_loop(field, y0):
    """`loop(y0, n)`: `n` dependent field evaluations in a jitted `fori_loop`."""

    def loop(y, n):
        def body(i, y):
            f = field(0.0, y, None)
            return jax.tree.map(lambda a, b: a + 1e-9 * b, y, f)

        return jax.lax.fori_loop(0, n, body, y)

    return jax.jit(loop).lower(y0, jnp.asarray(1)).compile()


def calibrate(run_n, seconds: float) -> int:
    """A loop count whose run lasts about `seconds` (at least 20 evaluations, so that the
    dispatch of the loop itself is negligible)."""
    n = 20
    while True:
        elapsed = run_n(n)
        if elapsed >= seconds or n >= 10**6:
            return n
        n = max(n + 1, int(n * min(10.0, 1.2 * seconds / max(elapsed, 1e-9))))


def check_eval_formula(solver_name: str) -> None:
    """Counts vector-field calls (host callback) and checks `EVALS_PER_STEP`."""
    K = 8
    problem, basis, sv0, _, _ = make_case(K, False)
    calls = []

    class Counted(eqx.Module):
        field: sd.ReducedGradientFlow

        def __call__(self, t, y, args):
            jax.debug.callback(lambda: calls.append(1))
            return self.field(t, y, args)

    tol = jnp.asarray(TOL)
    sol = _integrate(Counted(sd.ReducedGradientFlow(problem, basis)), sv0,
                     jnp.array([64.0 * K]), tol, tol, SOLVERS[solver_name](), 100_000,
                     False, True)
    jax.block_until_ready(sol.ys)
    expected = evals_from_steps(solver_name, int(sol.stats["num_steps"]))
    if len(calls) != expected:
        raise AssertionError(f"{solver_name}: counted {len(calls)} evaluations, formula "
                             f"{expected}; update EVALS_PER_STEP")


def evals_from_steps(solver_name: str, steps: int) -> int:
    # Every step (accepted or rejected) evaluates the stages after the first; the first
    # step also evaluates f(t0, y0) (diffrax reuses the evaluations of its initial step-size
    # guess, as the count shows).
    return EVALS_PER_STEP[solver_name] * steps + 1


def machine_info(mode: str) -> dict:
    cpu = platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        blas = "unknown"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "diffrax": diffrax.__version__,
        "equinox": eqx.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "softmax_diag": sd.__version__,
        "numpy_blas": blas,
        "numpy_blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "jax_backend": jax.default_backend(),
        "jax_devices": len(jax.devices()),
        "dtype": "float64",
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "loadavg_start": _loadavg(),
    }


def _version(name):
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# --------------------------------------------------------------------------- one case


class Method:
    """One timed thing: `run()` returns seconds; `extra` fills the record."""

    def __init__(self, name, run, warm=True, **extra):
        self.name, self.run, self.warm, self.extra = name, run, warm, extra
        self.times, self.cold_times = [], []

    def measure(self) -> None:
        """One interleaved repeat. A run under `WARM_BELOW_S` is preceded by an untimed
        run (kept as `cold_times`): right after another library's solve, a short solve
        pays for cold caches and parked threads (1.3 ms -> 2.2 ms for our K = 128 solve
        after a scipy one), which is not the cost of solving. Longer runs amortise it."""
        first = self.run()
        if self.warm and first < WARM_BELOW_S:
            self.cold_times.append(first)
            first = self.run()
        self.times.append(first)


def bench_case(K, t1, cfg, case, ref_sv, log):
    """All methods for one `(K, t1)`; returns (records, ratios)."""
    problem, basis, sv0, params0, frames = case
    with_full = params0 is not None and (K in cfg["full_K_long"] or t1 == 1e3)
    with_scipy_reduced = K <= cfg["scipy_reduced_max_K"]
    solver = diffrax.Dopri8()
    tol = jnp.asarray(TOL)
    methods, floors = [], {}

    # --- ours, jitted
    kinds = [("reduced", sv0, sd.ReducedGradientFlow(problem, basis))]
    if with_full:
        kinds.append(("full", params0, sd.FullGradientFlow(problem)))
    ref = {"reduced": ref_sv}
    if with_full:
        ref["full"] = sd.lift(problem, ref_sv, basis, frames)
    for kind, y0, field in kinds:
        compiled, compile_s = compile_solve(kind, problem, basis, y0, t1, solver)
        seconds, (y1, steps, rejected) = timed(lambda c=compiled, y0=y0: c(y0, tol, tol))
        loop = compile_eval_loop(field, y0)
        n = calibrate(lambda n, loop=loop, y0=y0: timed(lambda: loop(y0, jnp.asarray(n)))[0],
                      cfg["floor_s"])
        steps = int(steps)
        evals = evals_from_steps("Dopri8", steps)
        methods.append(Method(kind, lambda c=compiled, y0=y0: timed(lambda: c(y0, tol, tol))[0],
                              compile_s=compile_s, steps=steps, rejected=int(rejected),
                              evals=evals, rel_err=rel_err(y1, ref[kind]), warmup_s=seconds))
        floors[kind] = Method(f"{kind}_eval", lambda loop=loop, y0=y0, n=n: timed(
            lambda: loop(y0, jnp.asarray(n)))[0] / n, warm=False)
        log(f"  {kind:14s} compile {compile_s:6.2f}s  first run {seconds:8.4f}s  "
            f"steps {steps}  rel_err {methods[-1].extra['rel_err']:.1e}")

    # --- ours, eager public call (host checks included)
    if K <= cfg["eager_max_K"]:
        ts = jnp.array([t1])

        def eager():
            sol = sd.solve_reduced(problem, sv0, ts, basis=basis, rtol=TOL, atol=TOL)
            return sol.ys

        seconds, ys = timed(eager)  # compiles (cached afterwards)
        seconds, ys = timed(eager)
        methods.append(Method("reduced_eager", lambda: timed(eager)[0], compile_s=None,
                              steps=methods[0].extra["steps"], evals=methods[0].extra["evals"],
                              rel_err=rel_err(tuple(y[-1] for y in ys), ref_sv),
                              warmup_s=seconds))

    # --- scipy baselines
    scipy_kinds = []
    if with_scipy_reduced:
        y0 = np.concatenate([np.asarray(v) for v in sv0])
        scipy_kinds.append(("scipy_reduced", baselines.reduced_rhs(K), y0,
                            lambda y: (y[:K], y[K:]), ref_sv))
    if with_full:
        y0 = np.concatenate([np.asarray(w).ravel() for w in params0])
        scipy_kinds.append(("scipy_full", baselines.full_rhs(K, K), y0,
                            lambda y: (y[: K * K].reshape(K, K), y[K * K:].reshape(K, K)),
                            ref["full"]))
    if not with_scipy_reduced:  # too slow to solve: time its right-hand side only
        y0 = np.concatenate([np.asarray(v) for v in sv0])
        floors["scipy_reduced"] = Method("scipy_reduced_eval", lambda y0=y0: baselines.rhs_time(
            baselines.reduced_rhs(K), y0, cfg["floor_s"]), warm=False)
    for name, rhs, y0, unpack, r in scipy_kinds:
        start = time.perf_counter()
        y1, nfev, steps = baselines.solve(rhs, y0, t1, TOL, TOL)
        seconds = time.perf_counter() - start
        methods.append(Method(name, lambda rhs=rhs, y0=y0: _time_scipy(rhs, y0, t1),
                              compile_s=None, steps=steps, rejected=None, evals=nfev,
                              rel_err=rel_err(unpack(y1), r), warmup_s=seconds))
        floors[name] = Method(f"{name}_eval", lambda rhs=rhs, y0=y0: baselines.rhs_time(
            rhs, y0, cfg["floor_s"]), warm=False)
        log(f"  {name:14s} first run {seconds:8.4f}s  steps {steps}  nfev {nfev}  "
            f"rel_err {methods[-1].extra['rel_err']:.1e}")

    # --- interleaved repeats
    slowest = max(m.extra["warmup_s"] for m in methods)
    repeats = cfg["repeats"] if slowest < cfg["slow_s"] else cfg["slow_repeats"]
    timed_things = methods + list(floors.values())
    for _ in range(repeats):
        for m in timed_things:
            m.measure()

    records = []
    by_name = {m.name: m for m in methods}
    for m in methods:
        rec = dict(K=K, d=K, method=m.name, t1=t1, rtol=TOL, atol=TOL,
                   solver="DOP853" if m.name.startswith("scipy") else "Dopri8",
                   study="sweep", median_s=statistics.median(m.times), min_s=min(m.times),
                   times_s=m.times, repeats=repeats, **m.extra)
        if m.cold_times:
            rec["cold_median_s"] = statistics.median(m.cold_times)
        floor = floors.get(m.name)
        if floor is not None:
            rec["eval_s"] = statistics.median(floor.times)
            rec["floor_s"] = rec["evals"] * rec["eval_s"]
            rec["solve_over_floor"] = statistics.median(
                t / (rec["evals"] * e) for t, e in zip(m.times, floor.times))
        records.append(rec)

    ratios = []

    def ratio(name, num, den):
        if num in by_name and den in by_name:
            values = [a / b for a, b in zip(by_name[num].times, by_name[den].times)]
            ratios.append(dict(K=K, t1=t1, name=name, median=statistics.median(values),
                               values=values))

    ratio("full/reduced", "full", "reduced")
    ratio("scipy_reduced/reduced", "scipy_reduced", "reduced")
    ratio("full/scipy_full", "full", "scipy_full")
    ratio("reduced_eager/reduced", "reduced_eager", "reduced")
    if not with_scipy_reduced:
        # An estimate, not a measurement: scipy's time ~ its evaluations x one NumPy
        # right-hand side (its solve/floor is close to 1 where it ran), with the number
        # of evaluations taken from our Dopri8 solve (DOP853 takes a similar number).
        evals = by_name["reduced"].extra["evals"]
        values = [evals * e / t for e, t in zip(floors["scipy_reduced"].times,
                                                by_name["reduced"].times)]
        ratios.append(dict(K=K, t1=t1, name="scipy_reduced/reduced (estimate)",
                           median=statistics.median(values), values=values,
                           scipy_eval_s=statistics.median(floors["scipy_reduced"].times)))
    for rec in records:
        if "solve_over_floor" in rec:
            ratios.append(dict(K=K, t1=t1, name=f"{rec['method']} solve/floor",
                               median=rec["solve_over_floor"]))
    return records, ratios


def _time_scipy(rhs, y0, t1):
    start = time.perf_counter()
    baselines.solve(rhs, y0, t1, TOL, TOL)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- studies


def reference(K, case, horizons, cfg, log):
    """Tight reduced solutions at every horizon; checked against scipy for small K.

    Returns `({t1: sv}, ref_rtol, records)`.
    """
    problem, basis, sv0, _, _ = case
    ref_tol = REF_TOL if K <= REF_TOL_MAX_K else 1e-12
    ts = jnp.array(sorted(horizons))
    start = time.perf_counter()
    sol = sd.solve_reduced(problem, sv0, ts, basis=basis, rtol=ref_tol, atol=ref_tol,
                           max_steps=10_000_000)
    ys = jax.block_until_ready(sol.ys)
    seconds = time.perf_counter() - start
    refs = {float(t): tuple(y[i] for y in ys) for i, t in enumerate(np.asarray(ts))}
    records = []
    if K <= cfg["ref_check_max_K"]:
        y0 = np.concatenate([np.asarray(v) for v in sv0])
        for t1, r in refs.items():
            y1, nfev, steps = baselines.solve(baselines.reduced_rhs(K), y0, t1, ref_tol,
                                              ref_tol)
            records.append(dict(
                K=K, d=K, method="reference", t1=t1, rtol=ref_tol, atol=ref_tol,
                solver="Dopri8", study="reference", median_s=seconds, compile_s=None,
                steps=None, evals=None, rel_err=rel_err((y1[:K], y1[K:]), r),
                note=f"median_s: one solve, compile included; rel_err: deviation from "
                     f"scipy DOP853 at {ref_tol:g}"))
    log(f"  reference (Dopri8 at {ref_tol:g}) {seconds:.2f}s incl. compile"
        + (f"; vs scipy DOP853 {max(r['rel_err'] for r in records):.1e}" if records else ""))
    return refs, ref_tol, records


def work_precision(cfg, cases, log):
    """Time vs achieved error over tolerances, for several solvers, at one K."""
    K = cfg["wp_K"]
    t1 = 64.0 * K
    case, refs = cases.get(K, (None, None))
    if case is None or (cfg["wp_full"] and case[3] is None) or t1 not in refs:
        case = make_case(K, cfg["wp_full"])
        refs, _, _ = reference(K, case, [t1], dict(cfg, ref_check_max_K=0), log)
    problem, basis, sv0, params0, frames = case
    ref_sv = refs[t1]
    kinds = [("reduced", sv0, ref_sv)]
    if cfg["wp_full"]:
        kinds.append(("full", params0, sd.lift(problem, ref_sv, basis, frames)))
    records = []
    for kind, y0, ref in kinds:
        runs = {}
        for name in cfg["wp_solvers"]:
            compiled, compile_s = compile_solve(kind, problem, basis, y0, t1, SOLVERS[name]())
            runs[name] = (compiled, compile_s)
        y0_np = np.concatenate([np.asarray(v).ravel() for v in y0])
        rhs = baselines.reduced_rhs(K) if kind == "reduced" else baselines.full_rhs(K, K)
        for tol in cfg["wp_tols"]:
            tol_arr = jnp.asarray(tol)
            methods = []
            for name, (compiled, compile_s) in runs.items():
                run = lambda c=compiled: timed(lambda: c(y0, tol_arr, tol_arr))  # noqa: E731
                _, (y1, steps, rejected) = run()
                methods.append((name, lambda run=run: run()[0], dict(
                    compile_s=compile_s, steps=int(steps), rejected=int(rejected),
                    evals=evals_from_steps(name, int(steps)), rel_err=rel_err(y1, ref))))
            y1, nfev, steps = baselines.solve(rhs, y0_np, t1, tol, tol)
            split = y1.size // 2
            unpack = (y1[:split], y1[split:]) if kind == "reduced" else (
                y1[:split].reshape(K, K), y1[split:].reshape(K, K))
            methods.append(("DOP853", lambda: _time_scipy_tol(rhs, y0_np, t1, tol), dict(
                compile_s=None, steps=steps, rejected=None, evals=nfev,
                rel_err=rel_err(unpack, ref))))
            timers = {name: Method(name, fn) for name, fn, _ in methods}
            for _ in range(cfg["repeats"]):
                for timer in timers.values():
                    timer.measure()
            times = {name: timer.times for name, timer in timers.items()}
            for name, _, extra in methods:
                method = kind if name != "DOP853" else f"scipy_{kind}"
                records.append(dict(K=K, d=K, method=method, t1=t1, rtol=tol, atol=tol,
                                    solver=name, study="work_precision",
                                    median_s=statistics.median(times[name]),
                                    times_s=times[name], repeats=cfg["repeats"], **extra))
            log(f"  wp {kind} tol {tol:.0e}: " + "  ".join(
                f"{r['solver']} {r['median_s'] * 1e3:.2f}ms err {r['rel_err']:.1e}"
                for r in records[-len(methods):]))
    return records


def _time_scipy_tol(rhs, y0, t1, tol):
    start = time.perf_counter()
    baselines.solve(rhs, y0, t1, tol, tol)
    return time.perf_counter() - start


def run(mode: str, cfg: dict, log) -> dict:
    machine = machine_info(mode)
    if cfg["count_evals"]:  # costs one compilation per solver
        for name in sorted({"Dopri8", *cfg["wp_solvers"]}):
            check_eval_formula(name)
    records, ratios, cases = [], [], {}
    for K in sorted(set(cfg["full_K"]) | set(cfg["reduced_K"])):
        with_matrices = K in cfg["full_K"]
        case = make_case(K, with_matrices)
        horizons = sorted({1e3 if h == "1e3" else 64.0 * K for h in cfg["horizons"]})
        log(f"K = {K}")
        refs, ref_tol, ref_records = reference(K, case, horizons, cfg, log)
        cases[K] = (case, refs)
        records += ref_records
        for t1 in horizons:
            log(f" t1 = {t1:g}")
            recs, rats = bench_case(K, t1, cfg, case, refs[t1], log)
            for rec in recs:
                rec["ref_rtol"] = ref_tol
            records += recs
            ratios += rats
    log("work-precision")
    records += work_precision(cfg, cases, log)
    machine["loadavg_end"] = _loadavg()
    return {"machine": machine, "settings": {k: list(v) if isinstance(v, tuple) else v
                                             for k, v in cfg.items()},
            "records": records, "ratios": ratios}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="K = 8, 128 (and 1024 reduced), ~1 min")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the test")
    parser.add_argument("--json", type=pathlib.Path, help="write all records here")
    parser.add_argument("--markdown", type=pathlib.Path, help="write the tables here")
    parser.add_argument("--plot", type=pathlib.Path, help="time vs K, log-log (PNG)")
    parser.add_argument("--from-json", type=pathlib.Path, metavar="PATH",
                        help="render --markdown/--plot from an earlier --json; no solving")
    parser.add_argument("--blas-threads", type=int, metavar="N",
                        help="threads of NumPy's BLAS (scipy baselines); default: its own. "
                             "1 is steadier on a busy machine, where spinning BLAS threads "
                             "slow scipy_full down by 10x and more")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        mode = "smoke" if args.smoke else "quick" if args.quick else "full"
        start = time.perf_counter()
        results = run(mode, MODES[mode], log)
        results["machine"]["wall_s"] = time.perf_counter() - start
        log(f"done in {results['machine']['wall_s']:.0f} s")
    if args.json and not args.from_json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.plot:
        report.plot(results, args.plot)
    if args.markdown:
        report.write_markdown(results, args.markdown, plot=args.plot)
    if not (args.json or args.markdown or args.plot):
        print(report.markdown(results, plot=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
