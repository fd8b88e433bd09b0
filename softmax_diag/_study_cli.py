"""`softmax-diag study`: a thin shell over [`run_study`][softmax_diag.run_study]."""

import time

from ._cli import _int_at_least, _positive_float, _positive_int, add_problem_arguments, make_problem

_seed = _int_at_least(0)


def register(subparsers) -> None:
    """Adds `softmax-diag study` to the CLI's subparsers."""
    from ._study_init import INITS

    parser = subparsers.add_parser(
        "study",
        help="solve many random initializations to disk, resumably",
        description=(
            "Solve --batch random Hadamard initializations (float64), --chunk samples per "
            "file, sharded over every device JAX sees, into --out DIR. Sample i is drawn "
            "from (--seed, i) alone. Rerunning the same command resumes: finished chunks "
            "are skipped, damaged or partial ones recomputed. Load the results with "
            "softmax_diag.load_study(DIR)."
        ),
        epilog="initial distributions (--init): "
        + "; ".join(f"{name}: {text}" for name, text in INITS.items()),
    )
    add_problem_arguments(parser)
    parser.add_argument("--batch", type=_positive_int, default=1024,
                        help="number of initializations in the study (default 1024)")
    parser.add_argument("--chunk", type=_positive_int, default=64,
                        help="samples per chunk file and per batched solve (default 64)")
    parser.add_argument("--t1", type=_positive_float, default=1e3, help="final time")
    parser.add_argument("--t-min", type=_positive_float, default=1e-2,
                        help="first saved time > 0 (default 0.01)")
    parser.add_argument("--points", type=_positive_int, default=16,
                        help="log-spaced saved times > 0, plus t = 0 (default 16)")
    parser.add_argument("--seed", type=_seed, default=0)
    parser.add_argument("--rtol", type=_positive_float, default=1e-10)
    parser.add_argument("--atol", type=_positive_float, default=1e-10)
    parser.add_argument("--kind", choices=("reduced", "full"), default="reduced",
                        help="ODE to solve; full stores the projected singular values")
    parser.add_argument("--init", choices=tuple(INITS), default="uniform")
    parser.add_argument("--batching", choices=("vmap", "shared"), default="vmap",
                        help="one step size per sample (vmap, default) or per piece of "
                        "the batch (shared)")
    parser.add_argument("--max-steps", type=_positive_int, default=100_000)
    parser.add_argument("--log-time", action="store_true",
                        help="integrate in log(1 + t): fewer steps on long horizons")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the study in DIR and start over")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    parser.set_defaults(run=study_command)


def study_command(args, parser) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from ._study import run_study

    problem, basis = make_problem(args, parser)
    if args.points > 1 and not args.t_min < args.t1:
        parser.error(f"--t-min ({args.t_min:g}) must be below --t1 ({args.t1:g})")
    start = time.perf_counter()
    try:
        study = run_study(
            args.out, problem, basis=basis, num_samples=args.batch, chunk_size=args.chunk,
            t1=args.t1, points=args.points, t_min=args.t_min, seed=args.seed, kind=args.kind,
            init=args.init, batching=args.batching, rtol=args.rtol, atol=args.atol,
            max_steps=args.max_steps, log_time=args.log_time, overwrite=args.overwrite,
            progress=args.progress,
        )
    except (ValueError, TypeError) as err:
        parser.error(str(err).replace("`", ""))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished chunks are in {args.out}; run the same command "
              "again to resume.")
        return 130
    meta = study.meta
    print(
        f"softmax-diag study: {meta['done']}/{meta['num_samples']} samples in {args.out} "
        f"(K={problem.num_classes} width={problem.width} kind={args.kind} "
        f"batching={args.batching}, {meta['devices']} device(s), "
        f"{time.perf_counter() - start:.1f} s)"
    )
    if len(study.failed):
        print(
            f"{len(study.failed)} solve(s) stopped early (first: sample {study.failed[0]}); "
            "raise --max-steps or loosen --rtol/--atol, and rerun with --overwrite."
        )
        return 1
    return 0
