"""`softmax-diag figures --out DIR [--quick]`: regenerate the figures of `docs/figures.md`.

Each figure is a function `make(settings) -> matplotlib.figure.Figure` in
`_figures_dynamics.py` (reduced-ODE phenomena) or `_figures_training.py` (random starts
and optax). Figures are built with `matplotlib.figure.Figure` and written as PNG through
the Agg canvas: no pyplot, no global backend change. `--quick` runs a tiny configuration
(small K, few save times, few steps) for CI; the committed PNGs use the full settings.
"""

import dataclasses
import os
import time


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of every figure; `QUICK` is the CI configuration."""

    num_classes: int = 8  # K for figures 1, 3, 4, 5, 6, 7
    nc_classes: int = 16  # K for figure 2
    points: int = 120  # log-spaced save times per solve
    t_long: float = 1e10  # final time of figures 2-4 (neural collapse is logarithmic)
    t_mid: float = 1e4  # final time of figure 1
    t_random: float = 1e6  # final time of figure 5
    t_depth: float = 1e5  # final time of figure 6
    starts: int = 16  # random starts per kind for the Lyapunov panel
    width: int = 16  # hidden width d of every problem (>= both K)
    random_scale: float = 1e-2
    steps: int = 400  # optax steps (figure 7)
    all_optimizers: bool = True  # figure 7: SGD, heavy-ball, Nesterov and Adam (else SGD, Adam)
    rtol: float = 1e-10
    seed: int = 0


# One problem per loss/depth, equal numbers of save times (`steps == points`) and one
# width: every depth-2 CE solve of the quick run shares one compilation.
QUICK = Settings(
    num_classes=4, nc_classes=4, points=6, t_long=1e4, t_mid=1e2, t_random=1e2,
    t_depth=1e3, starts=2, width=4, random_scale=1e-1, steps=6, all_optimizers=False,
    rtol=1e-8,
)


def _figures():
    from . import _figures_dynamics as dyn
    from . import _figures_training as tr

    return (
        ("fig1_ce_vs_mse", dyn.ce_vs_mse),
        ("fig2_nc_lyapunov", dyn.nc_and_lyapunov),
        ("fig3_lagging_mode", dyn.lagging_mode),
        ("fig4_zero_mode", dyn.zero_mode),
        ("fig5_random_init", tr.random_init),
        ("fig6_depth", dyn.depth_spectra),
        ("fig7_optax", tr.optax_training),
    )


def _only(text: str) -> tuple[int, ...]:
    import argparse

    try:
        chosen = tuple(sorted({int(v) for v in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected figure numbers 1-7 separated by commas, got {text!r}"
        ) from None
    if not chosen or chosen[0] < 1 or chosen[-1] > 7:
        raise argparse.ArgumentTypeError(f"figure numbers must be in 1-7, got {text!r}")
    return chosen


def register(subparsers) -> None:
    """Adds the `figures` subcommand."""
    parser = subparsers.add_parser(
        "figures",
        help="regenerate the documentation figures (PNG)",
        description=(
            "Regenerate the seven figures described in docs/figures.md (CE vs squared loss, "
            "neural collapse and the Lyapunov candidate, a lagging mode, a zero mode, small "
            "random init, depth, optax training) as PNG files in --out. Runs in float64. "
            "--quick uses a tiny configuration (seconds, for CI)."
        ),
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument("--quick", action="store_true", help="tiny configuration (CI)")
    parser.add_argument(
        "--only", type=_only, default=None, metavar="N[,N...]",
        help="make only these figures (numbers 1-7)",
    )
    parser.add_argument("--dpi", type=int, default=110, help="PNG resolution (default 110)")
    parser.set_defaults(run=figures_command)


def figures_command(args, parser) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        parser.error(
            "the figures command needs matplotlib: pip install 'softmax_diag[plot]'"
        )
    if not 20 <= args.dpi <= 600:
        parser.error(f"--dpi must be in 20-600, got {args.dpi}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} exists and is not a directory; pick another path")
    os.makedirs(args.out, exist_ok=True)
    settings = QUICK if args.quick else Settings()
    figures = _figures()
    chosen = args.only or tuple(range(1, len(figures) + 1))
    total = time.perf_counter()
    for number in chosen:
        name, make = figures[number - 1]
        start = time.perf_counter()
        figure = make(settings)
        path = os.path.join(args.out, f"{name}.png")
        tmp = path + ".tmp.png"
        figure.savefig(tmp, dpi=args.dpi)
        os.replace(tmp, path)
        print(f"{path}  ({time.perf_counter() - start:.1f} s)", flush=True)
    mode = "quick" if args.quick else "full"
    print(f"{len(chosen)} figure(s), {mode} settings, {time.perf_counter() - total:.1f} s total")
    return 0
