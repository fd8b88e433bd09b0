"""`softmax-diag`: a thin argparse shell over the public functions.

`softmax-diag compare` solves the full and the reduced ODE from one random Hadamard
initialization and checks that the lifted reduced solution reproduces the full one.
Everything runs in float64.
"""

import argparse
import json
import math
import os
import platform
import sys
import time


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _int_at_least(minimum: int):
    """An argparse `type=`: an integer >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _weight_decay(text: str) -> float | tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or comma-separated numbers (one per layer), got {text!r}"
        ) from None
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"weight decay must be >= 0, got {text!r}")
    return values[0] if len(values) == 1 else values


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe the problem, shared by the subcommands."""
    parser.add_argument("--classes", type=_positive_int, default=16, help="K (default 16)")
    parser.add_argument("--width", type=_positive_int, default=32, help="d (default 32)")
    parser.add_argument("--depth", type=_positive_int, default=2, help="L (default 2)")
    parser.add_argument("--loss", choices=("ce", "mse"), default="ce")
    parser.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS")
    parser.add_argument(
        "--weight-decay", type=_weight_decay, default=0.0, metavar="LAMBDA[,...]",
        help="one value, or one per layer (output layer first)",
    )
    parser.add_argument("--samples-per-class", type=_positive_int, default=1, metavar="N")
    parser.add_argument(
        "--basis", choices=("auto", "walsh", "fourier"), default="auto",
        help="class basis (auto: Walsh for powers of two, else Fourier)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-diag",
        description="Exact cross-entropy dynamics of the unconstrained features model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser(
        "compare",
        help="solve the full and the reduced ODE and check that they agree",
        description=(
            "Solve the full weight-matrix ODE and the reduced singular-value ODE from one "
            "random Hadamard initialization (float64) and report, at log-spaced times, the "
            "relative deviation of the lifted reduced solution from the full one. Exits 0 "
            "only when the deviation stays below --max-deviation."
        ),
    )
    add_problem_arguments(compare)
    compare.add_argument("--t1", type=_positive_float, default=1e3, help="final time")
    compare.add_argument("--points", type=_positive_int, default=8, help="saved times > 0")
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--rtol", type=_positive_float, default=1e-12)
    compare.add_argument("--atol", type=_positive_float, default=1e-12)
    compare.add_argument("--max-deviation", type=_positive_float, default=1e-10)
    compare.add_argument("--progress", action="store_true", help="show progress bars")
    compare.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    compare.set_defaults(run=compare_command)
    for register in _more_commands():
        register(sub)
    return parser


def _more_commands():
    """`register(subparsers)` of the other subcommands, each in its own module.

    A subcommand's `register` adds its parser and sets `run=function(args, parser) -> int`.
    """
    # --- subcommands (one import line each) ---
    from ._figures import register as figures_register
    from ._study_cli import register as study_register
    return [study_register, figures_register]


def make_problem(args, parser):
    import softmax_diag as sd

    try:
        problem = sd.UFM(
            args.classes, args.width, depth=args.depth, loss=args.loss,
            label_smoothing=args.label_smoothing, weight_decay=args.weight_decay,
            samples_per_class=args.samples_per_class,
        )
        basis = {
            "auto": sd.spectral_basis, "walsh": sd.walsh_basis, "fourier": sd.fourier_basis
        }[args.basis](args.classes)
        if args.width < args.classes:
            raise ValueError(
                f"--width ({args.width}) must be >= --classes ({args.classes}) for a "
                "Hadamard initialization and the reduced ODE."
            )
    except (ValueError, TypeError) as err:
        parser.error(str(err).replace("`", ""))
    return problem, basis


def random_singular_values(key, problem, basis):
    """i.i.d. Uniform[0.2, 1.2] per layer and mode, tied pairs copied (Fourier)."""
    import jax
    import numpy as np

    keys = jax.random.split(key, problem.depth)
    sv = [jax.random.uniform(k, (problem.num_classes,), minval=0.2, maxval=1.2) for k in keys]
    if basis.pairs:
        idx = np.asarray(basis.pairs)
        sv = [v.at[idx[:, 1]].set(v[idx[:, 0]]) for v in sv]
    return tuple(sv)


def compare_command(args, parser) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import softmax_diag as sd
    from softmax_diag._losses import full_loss

    problem, basis = make_problem(args, parser)
    key_sv, key_frames = jax.random.split(jax.random.PRNGKey(args.seed))
    sv0 = random_singular_values(key_sv, problem, basis)
    params0, basis, frames = sd.hadamard_init(problem, sv0, key=key_frames, basis=basis)
    ts = jnp.concatenate(
        [jnp.zeros(1), jnp.logspace(-2, math.log10(args.t1), args.points)]
    ) if args.t1 > 0.01 else jnp.linspace(0.0, args.t1, args.points + 1)
    options = dict(rtol=args.rtol, atol=args.atol, progress=args.progress)

    def timed(fn):
        start = time.perf_counter()
        sol = jax.block_until_ready(fn())  # compile + run
        first = time.perf_counter() - start
        start = time.perf_counter()
        sol = jax.block_until_ready(fn())  # run only
        return sol, first, time.perf_counter() - start

    full, full_first, full_time = timed(lambda: sd.solve_full(problem, params0, ts, **options))
    red, red_first, red_time = timed(
        lambda: sd.solve_reduced(problem, sv0, ts, basis=basis, **options)
    )
    lift_all = jax.vmap(lambda sv: sd.lift(problem, sv, basis, frames))
    lifted = lift_all(red.ys)
    deviation = np.max(np.stack([
        np.linalg.norm(np.asarray(a - b).reshape(len(ts), -1), axis=1)
        / np.linalg.norm(np.asarray(b).reshape(len(ts), -1), axis=1)
        for a, b in zip(lifted, full.ys)
    ]), axis=0)
    losses = np.asarray(jax.vmap(lambda p: full_loss(problem, p))(full.ys))
    worst = float(np.max(deviation))
    passed = bool(worst <= args.max_deviation)

    print(
        f"softmax-diag compare: K={problem.num_classes} width={problem.width} "
        f"depth={problem.depth} loss={problem.loss} basis={type(basis).__name__} "
        f"n={problem.samples_per_class} weight_decay={args.weight_decay} "
        f"rtol={args.rtol:g} atol={args.atol:g} seed={args.seed} (float64)"
    )
    print(f"{'t':>12}  {'rel. deviation':>14}  {'loss':>12}")
    for t, dev, loss in zip(np.asarray(ts), deviation, losses):
        print(f"{t:12.4g}  {dev:14.3e}  {loss:12.6g}")
    steps_full, steps_red = int(full.stats["num_steps"]), int(red.stats["num_steps"])
    print(
        f"full ODE:    {steps_full:6d} steps, solve {full_time * 1e3:9.2f} ms "
        f"(first call with compile {full_first:.2f} s)"
    )
    print(
        f"reduced ODE: {steps_red:6d} steps, solve {red_time * 1e3:9.2f} ms "
        f"(first call with compile {red_first:.2f} s)"
    )
    verdict = "PASS" if passed else "FAIL"
    print(f"max relative deviation {worst:.3e} (bound {args.max_deviation:g}): {verdict}")

    if args.json:
        record = {
            "config": {k: v for k, v in vars(args).items() if k not in ("json", "run")},
            "ts": np.asarray(ts).tolist(),
            "deviation": deviation.tolist(),
            "loss": losses.tolist(),
            "max_deviation": worst,
            "passed": passed,
            "full": {"steps": steps_full, "solve_s": full_time, "first_call_s": full_first},
            "reduced": {"steps": steps_red, "solve_s": red_time, "first_call_s": red_first},
            "versions": {
                "softmax_diag": sd.__version__, "jax": jax.__version__,
                "python": platform.python_version(),
            },
            "device": str(jax.devices()[0]),
        }
        tmp = f"{args.json}.tmp"
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, args.json)
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.run(args, parser)


if __name__ == "__main__":
    sys.exit(main())
