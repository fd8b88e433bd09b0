"""Throughput (solves per second) of batched solves, one process per device count.

    python benchmarks/batch_throughput.py [--repeats 5] [--json results.json]

Measures, at K = 64 (width 64, cross-entropy, t in [0, 1e3], 17 saved times, Dopri8,
rtol = atol = 1e-10, float64):

- the reduced ODE one at a time (`solve_reduced` in a Python loop, the public single-solve
  path), and with `solve_batch` at batch sizes 1, 64 and 1024 in each batching mode
  (`shared`: one step size per slice; `vmap`: one per sample), with the default
  microbatch (32 on CPU) and, for 1024, with whole device slices (microbatch "whole");
- the full ODE one at a time (`solve_full` loop) and with `solve_batch` at batch 64.

Each device count D = 1, 4 runs in a fresh process with
`XLA_FLAGS=--xla_force_host_platform_device_count=D`. Compilation is excluded (every case
is called once first); then `--repeats` rounds time every case once each, so that changes
in the machine's load spread over all cases, and the median is reported, with the
deviation of batched from one-at-a-time results and the mean step count beside it.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

K = 64
REDUCED_BATCHES = (1, 64, 1024)
FULL_BATCH = 64
LOOP_SAMPLES = {"reduced": 64, "full": 8}


def worker(repeats: int) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import softmax_diag as sd
    from softmax_diag._study_init import save_times

    problem = sd.UFM(K, K)
    basis = sd.spectral_basis(K)
    ts = jnp.asarray(save_times(1e3, 16))
    tol = dict(rtol=1e-10, atol=1e-10)
    sv_all, frames_all = sd.initial_conditions(
        problem, np.arange(max(REDUCED_BATCHES)), seed=0, frames=True
    )

    def stack(ys):
        return np.stack([np.asarray(y) for y in ys], axis=1)  # (B, depth, T, ...)

    def singles_stack(sols):
        return np.stack([np.stack([np.asarray(y) for y in s.ys]) for s in sols])

    # (kind, mode, batch, microbatch, fn); `fn` returns a Solution or a list of them.
    cases = []
    n = LOOP_SAMPLES["reduced"]
    singles = [tuple(v[i] for v in sv_all) for i in range(n)]
    cases.append(("reduced", "loop", n, None, lambda: [
        sd.solve_reduced(problem, sv, ts, basis=basis, **tol) for sv in singles
    ]))
    for batch, mode, microbatch in (
        [(b, m, None) for b in REDUCED_BATCHES for m in ("shared", "vmap")]
        + [(max(REDUCED_BATCHES), m, "whole") for m in ("shared", "vmap")]
    ):
        options = dict(batching=mode, **tol)
        if microbatch == "whole":
            options["microbatch"] = batch  # each device's slice in one solve
        sv0 = tuple(v[:batch] for v in sv_all)
        cases.append(("reduced", mode, batch, microbatch,
                      lambda sv0=sv0, options=options: sd.solve_batch(problem, sv0, ts, **options)))
    lift = jax.vmap(lambda sv, fr: sd.lift(problem, sv, basis, fr))
    params0 = lift(tuple(v[:FULL_BATCH] for v in sv_all),
                   tuple(f[:FULL_BATCH] for f in frames_all))
    full_singles = [tuple(p[i] for p in params0) for i in range(LOOP_SAMPLES["full"])]
    cases.append(("full", "loop", len(full_singles), None,
                  lambda: [sd.solve_full(problem, p, ts, **tol) for p in full_singles]))
    for mode in ("shared", "vmap"):
        cases.append(("full", mode, FULL_BATCH, None, lambda mode=mode: sd.solve_batch(
            problem, params0, ts, kind="full", batching=mode, **tol)))

    # Compile everything first, then time in rounds over all cases, so that a change in
    # the machine's load hits every case alike.
    outputs = [jax.block_until_ready(case[-1]()) for case in cases]
    times = [[] for _ in cases]
    for _ in range(repeats):
        for case, record in zip(cases, times):
            start = time.perf_counter()
            jax.block_until_ready(case[-1]())
            record.append(time.perf_counter() - start)

    rows, references = [], {}
    for (kind, mode, batch, microbatch, _), out, record in zip(cases, outputs, times):
        if mode == "loop":
            references[kind] = singles_stack(out)
            steps, deviation = [int(s.stats["num_steps"]) for s in out], 0.0
        else:
            m = min(batch, len(references[kind]))
            deviation = float(np.max(np.abs(stack(out.ys)[:m] - references[kind][:m])))
            steps = out.stats["num_steps"]
        seconds = float(np.median(record))
        rows.append({
            "kind": kind, "mode": mode, "batch": batch, "microbatch": microbatch,
            "seconds": seconds, "solves_per_s": batch / seconds,
            "mean_steps": float(np.mean(steps)), "max_deviation": deviation,
        })
        print(f"  {kind:7s} {mode:7s} B={batch:5d} mb={microbatch!s:5s} "
              f"{batch / seconds:9.1f} solves/s", file=sys.stderr, flush=True)

    return {"devices": len(jax.devices()), "platform": jax.devices()[0].platform, "rows": rows}


def markdown(results: list[dict]) -> str:
    lines = [
        "| devices | ODE | batching | batch | microbatch | solves/s | vs one at a time "
        "| mean steps | max abs. deviation |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        loops = {r["kind"]: r["solves_per_s"] for r in result["rows"] if r["mode"] == "loop"}
        for r in result["rows"]:
            micro = "-" if r["mode"] == "loop" else r["microbatch"] or "default"
            lines.append(
                f"| {result['devices']} | {r['kind']} | {r['mode']} | {r['batch']} | {micro} "
                f"| {r['solves_per_s']:.1f} | {r['solves_per_s'] / loops[r['kind']]:.2f}x "
                f"| {r['mean_steps']:.1f} | {r['max_deviation']:.1e} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(max(args.repeats, 1))))
        return 0
    results = []
    load_before = os.getloadavg()
    for devices in args.devices:
        print(f"{devices} device(s):", file=sys.stderr, flush=True)
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        out = subprocess.run(
            [sys.executable, __file__, "--worker", "--repeats", str(args.repeats)],
            env=env, stdout=subprocess.PIPE, text=True, check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    machine = {
        "machine": platform.machine(), "processor": platform.processor(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    print(f"\nK = {K}, width {K}, CE, t1 = 1e3, rtol = atol = 1e-10, Dopri8, float64; "
          f"median of {args.repeats}; {machine['cpus']} CPUs, load average "
          f"{load_before[0]:.1f} -> {machine['load_average_after'][0]:.1f}\n")
    print(markdown(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
