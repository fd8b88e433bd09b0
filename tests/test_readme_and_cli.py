"""The README's examples run, and the CLI's main job passes and refuses bad options."""

import json
import pathlib
import re
import subprocess
import sys

import pytest

from softmax_diag._cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_quick_start_has_two_one_line_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, flags=re.S).group(1)
    lines = [line for line in block.strip().splitlines() if line.strip()]
    assert len(lines) == 2
    assert "softmax-diag compare" in lines[0] and "pytest" in lines[1]


@pytest.mark.parametrize("block", python_blocks(ROOT / "README.md"))
def test_readme_python_examples_run(block):
    exec(compile(block, "README.md", "exec"), {})


def test_compare_passes_and_writes_json(tmp_path, capsys):
    out = tmp_path / "compare.json"
    rc = main(["compare", "--classes", "8", "--width", "9", "--t1", "100", "--points", "3",
               "--json", str(out)])
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    assert rc == 0, printed
    assert record["passed"] and record["max_deviation"] <= 1e-10
    assert len(record["deviation"]) == 4 and record["ts"][0] == 0.0
    assert record["full"]["steps"] > 0 and record["reduced"]["steps"] > 0
    assert "PASS" in printed


def test_compare_covers_the_general_options(capsys):
    rc = main(["compare", "--classes", "6", "--width", "7", "--depth", "3", "--label-smoothing",
               "0.1", "--weight-decay", "0.01,0,0.02", "--samples-per-class", "2", "--t1", "10",
               "--points", "2"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "FourierBasis" in printed and "depth=3" in printed


def test_compare_fails_when_the_bound_is_impossible(capsys):
    rc = main(["compare", "--classes", "4", "--width", "4", "--t1", "10", "--points", "2",
               "--max-deviation", "1e-30"])
    assert rc == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--classes", "12", "--basis", "walsh"], "power of two"),
        (["--classes", "8", "--width", "4"], "width"),
        (["--rtol", "-1"], "rtol"),
        (["--weight-decay", "x"], "weight-decay"),
        (["--label-smoothing", "1.5"], "label_smoothing"),
    ],
)
def test_compare_refuses_bad_options(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", *argv])
    assert exc.value.code == 2
    assert words in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "softmax_diag", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "compare" in result.stdout
