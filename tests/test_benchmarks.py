"""`benchmarks/run.py --smoke`: runs, writes the documented JSON schema, every method accurate.

No timing is asserted (timings belong to benchmarks/RESULTS.md, not to tests).
"""

import json
import math
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECORD_KEYS = {"K", "d", "method", "t1", "rtol", "median_s", "compile_s", "steps", "evals",
               "rel_err"}
MACHINE_KEYS = {"cpu", "cores", "jax", "diffrax", "numpy", "scipy", "dtype"}


def test_smoke_run_writes_schema_and_accurate_records(tmp_path):
    out, md, png = tmp_path / "bench.json", tmp_path / "bench.md", tmp_path / "bench.png"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--quiet",
         "--json", str(out), "--markdown", str(md), "--plot", str(png)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())

    assert MACHINE_KEYS <= set(data["machine"]), data["machine"]
    assert data["machine"]["dtype"] == "float64"
    records = data["records"]
    sweep = [r for r in records if r["study"] == "sweep"]
    assert {"reduced", "full", "scipy_reduced", "scipy_full"} <= {r["method"] for r in sweep}
    for r in records:
        assert RECORD_KEYS <= set(r), r
        assert isinstance(r["rel_err"], float) and math.isfinite(r["rel_err"]), r
        assert r["median_s"] > 0
        # Every method against a tight reference (Dopri8 at 1e-13, lifted for the full
        # ODE); the achieved error stays within a few hundred times the tolerance.
        assert r["rel_err"] < 1e3 * r["rtol"], r
    for r in sweep:
        assert r["rtol"] == 1e-10 and r["d"] == r["K"]
        assert r["steps"] > 0 and r["evals"] > r["steps"], r
        if not r["method"].startswith("scipy"):
            assert r["compile_s"] > 0
    wp = [r for r in records if r["study"] == "work_precision"]
    assert {"Dopri8", "Tsit5"} <= {r["solver"] for r in wp}
    assert data["ratios"] and all(r["median"] > 0 for r in data["ratios"])

    text = md.read_text()
    assert "<!-- BEGIN GENERATED" in text and "| reduced |" in text
    assert png.stat().st_size > 0
