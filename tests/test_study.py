"""run_study / load_study / `softmax-diag study`: resume after SIGKILL, damaged chunks,
config changes, bad input.

Shapes match `tests/test_batch.py` (K = 4, chunks of 3 on 4 devices), so compilations are
shared between the two files.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import softmax_diag as sd
from softmax_diag._cli import main

PROBLEM = sd.UFM(4, 4)
OPTIONS = dict(chunk_size=3, t1=20.0, points=3, progress=False)
CLI = ["study", "--classes", "4", "--width", "4", "--chunk", "3", "--t1", "20",
       "--points", "3", "--no-progress"]


def chunk_files(directory):
    return sorted(os.listdir(os.path.join(directory, "chunks")))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    directory = tmp_path_factory.mktemp("small")
    return directory, sd.run_study(directory, PROBLEM, num_samples=7, **OPTIONS)


def test_study_matches_batched_solves(small):
    directory, study = small
    assert study.complete and study.missing == 0 and study.meta["done"] == 7
    assert study.meta["devices"] == 4 and study.meta["config"]["num_samples"] == 7
    assert study.meta["versions"]["jax"] and study.meta["config"]["problem"]["num_classes"] == 4
    np.testing.assert_array_equal(study.indices, np.arange(7))
    assert study.ts[0] == 0.0 and len(study.ts) == 4 and study.ts[-1] == 20.0
    assert [v.shape for v in study.sv] == [(7, 4, 4)] * 2
    # Samples 3..5 form chunk 1: exactly what solve_batch gives for them.
    sv0 = sd.initial_conditions(PROBLEM, np.arange(3, 6), seed=0)
    for saved, drawn in zip(study.sv0, sv0):
        np.testing.assert_array_equal(saved[3:6], np.asarray(drawn))
    sol = sd.solve_batch(PROBLEM, sv0, study.ts)
    for saved, solved in zip(study.sv, sol.ys):
        np.testing.assert_array_equal(saved[3:6], np.asarray(solved))
    chunks = list(study.chunks())
    assert [list(i) for i, _ in chunks] == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunk_files(directory) == [f"{i:06d}.{e}" for i in range(3) for e in ("json", "npy")]


def test_damaged_chunks_are_recomputed(small):
    directory, study = small
    before = tuple(v.copy() for v in study.sv)
    chunks = directory / "chunks"
    npy = chunks / "000001.npy"
    npy.write_bytes(npy.read_bytes()[:100])  # truncated
    other = chunks / "000002.npy"
    data = bytearray(other.read_bytes())
    data[-1] ^= 0xFF  # same size, one flipped byte: caught by the sha256
    other.write_bytes(bytes(data))
    (chunks / "000001.npy.tmp-12345").write_bytes(b"partial")  # left by a crash
    untouched = os.stat(chunks / "000000.npy").st_mtime_ns
    with pytest.warns(UserWarning, match="3 of 7 samples done, 4 missing"):
        partial = sd.load_study(directory)
    np.testing.assert_array_equal(partial.indices, [0, 1, 2])
    resumed = sd.run_study(directory, PROBLEM, num_samples=7, **OPTIONS)
    assert resumed.complete and len(resumed.meta["runs"]) == 2
    assert os.stat(chunks / "000000.npy").st_mtime_ns == untouched  # finished: skipped
    assert chunk_files(directory) == [f"{i:06d}.{e}" for i in range(3) for e in ("json", "npy")]
    for a, b in zip(resumed.sv, before):
        np.testing.assert_array_equal(a, b)
    # Killed between the two renames: a .npy without its commit record is recomputed.
    (chunks / "000001.json").unlink()
    with pytest.warns(UserWarning, match="4 of 7 samples done, 3 missing"):
        assert sd.load_study(directory).missing == 3
    again = sd.run_study(directory, PROBLEM, num_samples=7, **OPTIONS)
    assert again.complete and os.stat(chunks / "000000.npy").st_mtime_ns == untouched
    for a, b in zip(again.sv, before):
        np.testing.assert_array_equal(a, b)


def test_changed_config_is_refused(small, capsys):
    directory, _ = small
    with pytest.raises(ValueError, match=r"seed: 0 on disk, 1 now.*overwrite"):
        sd.run_study(directory, PROBLEM, num_samples=7, seed=1, **OPTIONS)
    with pytest.raises(SystemExit) as exc:
        main(CLI + ["--batch", "7", "--rtol", "1e-9", "--out", str(directory)])
    assert exc.value.code == 2 and "rtol" in capsys.readouterr().err


def test_overwrite_starts_over(tmp_path):
    sd.run_study(tmp_path, PROBLEM, num_samples=2, seed=5, **OPTIONS)
    (tmp_path / "notes.txt").write_text("mine")
    study = sd.run_study(tmp_path, PROBLEM, num_samples=3, overwrite=True, **OPTIONS)
    assert study.complete and study.meta["config"]["seed"] == 0
    assert len(study.meta["runs"]) == 1 and (tmp_path / "notes.txt").read_text() == "mine"


def test_full_kind_stores_projected_singular_values(small, tmp_path):
    """The full ODE from lifted initial conditions, projected back: the reduced study
    within 1e-8 (100x the tolerance; steps differ, so the global errors differ)."""
    _, reduced = small
    full = sd.run_study(tmp_path, PROBLEM, num_samples=3, kind="full", **OPTIONS)
    assert full.meta["config"]["kind"] == "full"
    for a, b in zip(full.sv, reduced.sv):
        np.testing.assert_allclose(a, b[:3], rtol=1e-8, atol=1e-8)
    # The stored values rebuild the weights: lift with the regenerated frames.
    sv0, frames = sd.initial_conditions(PROBLEM, np.arange(3), seed=0, frames=True)
    w0 = sd.lift(PROBLEM, tuple(v[0] for v in sv0), sd.spectral_basis(4),
                 tuple(f[0] for f in frames))
    rebuilt = sd.lift(PROBLEM, tuple(v[0, 0] for v in full.sv), sd.spectral_basis(4),
                      tuple(f[0] for f in frames))
    for a, b in zip(rebuilt, w0):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(num_samples=0), ValueError, "num_samples"),
        (dict(kind="dense"), ValueError, "kind"),
        (dict(init="normal"), ValueError, "init"),
        (dict(batching="pmap"), ValueError, "batching"),
        (dict(t_min=50.0), ValueError, "t_min"),
        (dict(rtol=0.0), ValueError, "rtol"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(num_samples=2.5), TypeError, "num_samples"),
        (dict(log_time="yes"), TypeError, "log_time"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    options = dict(OPTIONS, num_samples=3) | kwargs
    with pytest.raises(error, match=match):
        sd.run_study(tmp_path / "s", PROBLEM, **options)
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_directory_problems(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        sd.run_study(a_file, PROBLEM, num_samples=3, **OPTIONS)
    with pytest.raises(ValueError, match="no study"):
        sd.load_study(tmp_path)
    (tmp_path / "other" / "chunks").mkdir(parents=True)
    (tmp_path / "other" / "chunks" / "x").write_text("")
    with pytest.raises(ValueError, match="no study manifest"):
        sd.run_study(tmp_path / "other", PROBLEM, num_samples=3, **OPTIONS)
    for argv in (["--out", str(a_file)], ["--chunk", "0", "--out", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main(CLI + argv)
        assert exc.value.code == 2
    assert "is a file" in capsys.readouterr().err


def test_killed_study_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL part-way through, rerun the same command: equal to an uninterrupted run."""
    args = CLI + ["--batch", "300"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "softmax_diag", *args, "--out", str(killed)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    records = []
    deadline = time.monotonic() + 300
    while not records and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
        if (killed / "chunks").is_dir():
            records = [n for n in os.listdir(killed / "chunks") if n.endswith(".json")]
    os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    with pytest.warns(UserWarning, match="missing"):
        partial = sd.load_study(killed)
    print(f"killed with {partial.meta['done']} of 300 samples done")
    assert 0 < partial.meta["done"] < 300, "the study was not interrupted part-way"
    assert partial.meta["runs"][0]["devices"] == 4

    assert main(args + ["--out", str(killed)]) == 0  # resume
    assert main(args + ["--out", str(clean)]) == 0  # uninterrupted
    resumed, reference = sd.load_study(killed), sd.load_study(clean)
    np.testing.assert_array_equal(resumed.indices, np.arange(300))  # each sample once
    for a, b in zip(resumed.sv, reference.sv):
        np.testing.assert_array_equal(a, b)
    assert chunk_files(killed) == chunk_files(clean)  # no temporary or stray files
    assert len(resumed.meta["runs"]) == 2 and resumed.meta["devices"] == 4
