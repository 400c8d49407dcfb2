"""Every claim a chapter covers is an experiment: a code cell ``# Claim C<n>: ...`` that asserts.

``CLAIMS_BY_CHAPTER`` is the registry (claim ids from the claims ledger, see CONTRIBUTING.md):
each chapter lists the claims it must show. For every written chapter, each listed claim
needs a code cell whose first line starts with ``# Claim C<n>`` and which contains an
``assert``; the suite executes the notebooks (nbval), so those asserts run. Conversely, a
chapter may not carry claim markers the registry does not list for it. Chapters still being
written are stubs (one markdown cell saying so) and are skipped until they land.

Extend the registry when a chapter is added (Parts III-VII).
"""

from __future__ import annotations

import re

import nbformat
import pytest

from tests.conftest import ROOT

CLAIMS_BY_CHAPTER: dict[str, list[str]] = {
    # Part I: Foundations
    "book/foundations/overfitting.ipynb": ["C39"],
    # Part II: Weight penalties
    "book/penalties/l2_weight_decay.ipynb": ["C5", "C6", "C7", "C8", "C9"],
    "book/penalties/l1_sparsity.ipynb": ["C10", "C11", "C12", "C40"],
    # C36 here is its max-norm projection half (gradient clipping comes in Part VI)
    "book/penalties/elastic_net_structured.ipynb": ["C13", "C14", "C15", "C16", "C17", "C18", "C36"],
    # Part III: Stochastic regularization
    "book/dropout/dropout.ipynb": ["C19", "C20", "C41"],
    "book/dropout/dropout_variants.ipynb": ["C21"],
    "book/dropout/bayesian_dropout.ipynb": ["C22", "C23"],
    "book/dropout/dropout_batchnorm.ipynb": ["C24"],
    "book/dropout/stochastic_depth.ipynb": ["C37"],
    # Part IV: Normalization
    "book/normalization/batch_norm.ipynb": ["C25"],
    "book/normalization/layer_group_norm.ipynb": ["C26", "C27"],
    # C18 here: what is new for spectral normalization (rho as a normalizer, conv weights reshaped)
    "book/normalization/spectral_norm.ipynb": ["C18", "C28"],
}

STUB_TEXT = "This chapter is being written."
MARKER = re.compile(r"#\s*Claim\s+(C\d+)\b")
# tags that would keep a cell from running (nbval, Jupyter Book): a claim cell must run
NOT_RUN_TAGS = {"nbval-skip", "skip-execution", "raises-exception", "nbval-raises-exception"}

CHAPTERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book").rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def is_stub(nb) -> bool:
    """A chapter being written: besides the setup cell, one markdown cell saying so."""
    cells = [c for c in nb.cells if "setup" not in c.metadata.get("tags", [])]
    return len(cells) == 1 and cells[0].cell_type == "markdown" and STUB_TEXT in cells[0].source


def claim_cells(nb) -> dict[str, list]:
    """Claim id -> the code cells whose first line is its marker."""
    found: dict[str, list] = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        match = MARKER.match(cell.source.lstrip().split("\n", 1)[0])
        if match:
            found.setdefault(match.group(1), []).append(cell)
    return found


def has_assert(source: str) -> bool:
    code = [line.split("#", 1)[0] for line in source.split("\n")]
    return any(re.search(r"\bassert\b", line) for line in code)


def _read(path: str):
    return nbformat.read(ROOT / path, as_version=4)


def test_registry_is_well_formed():
    for path, claims in CLAIMS_BY_CHAPTER.items():
        assert (ROOT / path).is_file(), f"registered chapter {path} does not exist"
        assert claims and all(re.fullmatch(r"C[1-9]\d*", c) for c in claims), f"{path}: {claims}"
        assert len(claims) == len(set(claims)), f"{path}: a claim is listed twice"


@pytest.mark.parametrize("path", sorted(CLAIMS_BY_CHAPTER))
def test_each_registered_claim_is_asserted_in_its_chapter(path):
    nb = _read(path)
    if is_stub(nb):
        pytest.skip(f"{path} is still a stub ({STUB_TEXT!r}); its claims are checked once it lands")
    found = claim_cells(nb)
    missing = [c for c in CLAIMS_BY_CHAPTER[path] if c not in found]
    assert not missing, f"{path}: no '# Claim <id>' code cell for {missing}"
    for claim in CLAIMS_BY_CHAPTER[path]:
        cells = found[claim]
        assert any(has_assert(c.source) for c in cells), f"{path}: the cell of {claim} asserts nothing"
        for cell in cells:
            tags = set(cell.metadata.get("tags", []))
            assert not tags & NOT_RUN_TAGS, f"{path}: the cell of {claim} is tagged {tags & NOT_RUN_TAGS}"


@pytest.mark.parametrize("path", CHAPTERS)
def test_no_claim_marker_outside_the_registry(path):
    markers = set(claim_cells(_read(path)))
    unregistered = sorted(markers - set(CLAIMS_BY_CHAPTER.get(path, [])), key=lambda c: int(c[1:]))
    assert not unregistered, f"{path} marks {unregistered}: add them to CLAIMS_BY_CHAPTER"


# the checker itself, on small notebooks made here (so that it can be seen to fail)

def _nb(*sources, stub=False):
    cells = [nbformat.v4.new_markdown_cell("# Title" + (f"\n\n{STUB_TEXT}" if stub else ""))]
    setup = nbformat.v4.new_code_cell("device = 'cpu'")
    setup.metadata["tags"] = ["setup"]
    cells.append(setup)
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.v4.new_notebook(cells=cells)


def test_checker_recognises_stubs_markers_and_asserts():
    assert is_stub(_nb(stub=True))
    assert not is_stub(_nb("x = 1", stub=True))
    found = claim_cells(_nb("# Claim C9: dof\nassert 1 + 1 == 2", "x = 1  # Claim C8 not at the start",
                            "# Claim C12: nothing asserted here\n# assert later"))
    assert sorted(found) == ["C12", "C9"]
    assert has_assert(found["C9"][0].source)
    assert not has_assert(found["C12"][0].source), "an assert in a comment does not count"
