"""Every chapter and solution notebook: title first, the generated setup cell, no outputs in git."""

import re
import subprocess
import sys

import nbformat
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402

NOTEBOOKS = setup_cell.notebooks()
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert any("book" in p.parts for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_title_setup_cell_and_stripped_outputs(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and re.match(r"# \S", first.source), "first cell must be '# Title'"
    headings = [c for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if re.match(r"# \S", line)]
    assert len(headings) == 1, "exactly one top-level '# ' heading per notebook"
    assert setup_cell.is_current(nb), "run `python tools/setup_cell.py --write`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "strip outputs before committing"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


def test_setup_cell_check_command_passes():
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "setup_cell.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_setup_cell_reads_the_repository_url_from_config():
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f"git+{url}@" in setup_cell.setup_source()
    # the URL is written in one place: no notebook source hard-codes another repository
    for path in NOTEBOOKS:
        text = path.read_text()
        for found in re.findall(r"git\+(https://[^\s\"@]+)", text):
            assert found == url, f"{path}: {found}"
