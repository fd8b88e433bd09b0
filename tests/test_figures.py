"""`softmax-diag figures --quick` writes seven valid PNGs; docs/figures.md describes each one
and the committed full-size PNGs exist."""

import pathlib

import pytest

from softmax_diag._cli import main
from softmax_diag._figures import _figures

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = [name for name, _ in _figures()]


def test_quick_figures_are_valid_pngs(tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "figures"
    assert main(["figures", "--out", str(out), "--quick", "--dpi", "50"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{name}.png" for name in NAMES)  # no temporary files left
    for name in NAMES:
        path = out / f"{name}.png"
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000
        pixels = image.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 150 and pixels.shape[1] > 400
        assert pixels.std() > 0.01  # not a blank canvas
    report = capsys.readouterr().out
    assert "7 figure(s), quick settings" in report


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--only", "8"], "1-7"),
        (["--only", "x"], "figure numbers"),
        (["--dpi", "5"], "--dpi"),
    ],
)
def test_bad_options_are_refused(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(["figures", "--out", str(tmp_path), "--quick"] + argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    with pytest.raises(SystemExit):
        main(["figures", "--out", str(target), "--quick"])
    assert "not a directory" in capsys.readouterr().err


def test_docs_caption_every_committed_figure():
    text = (ROOT / "docs" / "figures.md").read_text()
    assert "softmax-diag figures --out docs/figures" in text
    for name in NAMES:
        assert f"figures/{name}.png" in text, name
        png = ROOT / "docs" / "figures" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == PNG_SIGNATURE, png
