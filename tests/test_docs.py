"""Every ```python block of the docs runs (blocks of one page share a namespace)."""

import pathlib
import re
import textwrap

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace = {}
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", page.read_text(), flags=re.S | re.M)
    assert blocks
    for i, (_, block) in enumerate(blocks):
        code = textwrap.dedent(block)  # blocks nested in lists are indented
        exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
