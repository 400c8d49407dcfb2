"""The website builds under ``-W -n`` (warnings and broken references are errors).

The build runs without executing the notebooks (the chapters' own execution is tested by
nbval): a copy of ``_config.yml`` with ``execute_notebooks: "off"`` is passed to
``jupyter-book build --config``, and everything is written to a temporary ``--path-output``.
Checked: the build succeeds, every page of ``_toc.yml`` has its HTML file, and every notebook
page (chapters and released exercises) has a Colab launch link that opens its ``.ipynb``.

Slow (about half a minute): deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every page named in ``_toc.yml``, in book order (parsed as Jupyter Book parses it)."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    return list(parse_toc_yaml(str(ROOT / "_toc.yml")))


def notebook_pages() -> list[str]:
    return [f for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    config = dict(CONFIG)
    config["execute"] = {**config.get("execute", {}), "execute_notebooks": "off"}
    # paths of local extensions are resolved against the config file's folder
    sphinx = dict(config.get("sphinx", {}))
    sphinx["local_extensions"] = {name: str((ROOT / path).resolve())
                                  for name, path in (sphinx.get("local_extensions") or {}).items()}
    config["sphinx"] = sphinx
    config_path = tmp / "_config.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(BIN / "jupyter-book"), "build", str(ROOT), "-W", "-n", "--keep-going",
         "--config", str(config_path), "--path-output", str(tmp / "out")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
    )
    return proc, tmp / "out" / "_build" / "html"


def test_toc_lists_the_chapters_and_the_released_exercises():
    files = toc_files()
    assert len(files) == len(set(files)), "a page is listed twice"
    assert any(f.startswith("book/") for f in notebook_pages())
    released = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "exercises").glob("*/*.ipynb"))
    assert released and set(released) <= set(files), "every released exercise is a page of the book"


def test_build_succeeds_without_warnings(build):
    proc, html = build
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    problems = [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, "book build failed:\n" + "\n".join(problems[-40:] or output.splitlines()[-40:])
    assert (html / "index.html").exists()


def test_every_toc_page_has_an_html_file(build):
    _, html = build
    missing = [f for f in toc_files() if not (html / f"{f}.html").exists()]
    assert not missing, f"pages without HTML: {missing}"


@pytest.mark.parametrize("page", notebook_pages())
def test_notebook_page_opens_its_ipynb_in_colab(build, page):
    _, html = build
    repo = CONFIG["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    branch = CONFIG["repository"].get("branch", "main")
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    expected = f"{colab}/github/{repo}/blob/{branch}/{page}.ipynb"
    links = set(re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', (html / f"{page}.html").read_text()))
    assert expected in links, f"{page}: Colab links {sorted(links)}"
