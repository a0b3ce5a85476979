"""The documentation a clone carries is complete in itself: the README links the architecture and protocol pages,
and nothing user-facing points outside the repository (../shared does not exist in a clone). Model cards are cards
whose figures are the leaderboards', and no text narrates history in "sessions"."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_links_the_docs_and_they_exist():
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/architecture.md", "docs/protocols.md"):
        assert page in readme and (ROOT / page).is_file(), page


def test_nothing_user_facing_points_outside_the_repository():
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("leaderboards/*.md"),
             *ROOT.glob("methods/*/MODEL_CARD.md"), *ROOT.glob("fsbench/**/*.py")]
    offenders = [str(f.relative_to(ROOT)) for f in files if re.search(r"\.\./shared\b", f.read_text())]
    assert offenders == []


def test_architecture_page_names_every_harness_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    modules = {p.stem if p.is_file() else p.name for p in (ROOT / "fsbench").iterdir()
               if (p.suffix == ".py" and p.stem not in ("__init__", "__main__")) or (p / "__init__.py").is_file()}
    assert [m for m in sorted(modules) if not re.search(rf"\b{m}(\.py|/)", page)] == []


# the cards of the checkpoints fsbench trains and ships (a family of methods run from your files has a card of
# conventions and sources instead)
CARDS = sorted(p for p in ROOT.glob("methods/*/MODEL_CARD.md") if (p.parent / "TRAINING_LOG.md").is_file())
CARD_SECTIONS = ("## What it is", "## Training data", "## Training recipe", "## Evaluation",
                 "## Deviations from the paper", "## Limitations", "## Licence")


def _tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Markdown tables of ``text``: (header cells, rows of cells), the separator row dropped."""
    tables, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif block:
            tables.append((block[0], [r for r in block[1:] if not set("".join(r)) <= set("-: ")]))
            block = []
    return tables


def _leaderboard_rows(protocol: str) -> dict[str, dict[str, str]]:
    """Method name → {metric name → cell} of a protocol's leaderboard page."""
    header, rows = next(t for t in _tables((ROOT / "leaderboards" / f"{protocol}.md").read_text())
                        if t[0][0] == "method" and "checkpoint" in t[0])
    names = [h.split()[0] for h in header]
    # a metric measured by several backends has a column each, its primary backend's first: that one is quoted
    first = [i for i, name in enumerate(names) if name not in names[:i]]
    return {row[0].split()[0]: {names[i]: row[i] for i in first} for row in rows}


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parent.name)
def test_model_card_is_a_card(card: Path) -> None:
    """At most 200 lines, the sections of a model card, and the checkpoint it describes is the registered one, which
    is also the last row of the training log beside it."""
    from fsbench import registry

    text = card.read_text()
    assert len(text.splitlines()) <= 200
    assert [s for s in CARD_SECTIONS if s not in text] == []
    sha256 = registry.methods.get(card.parent.name).card.checkpoint_sha256
    assert sha256 in text
    _, rows = _tables((card.parent / "TRAINING_LOG.md").read_text())[0]
    assert sha256[:12] in rows[-1][0]


def _check_figures(text: str, need_protocol: bool = False) -> int:
    """Assert that every figure in the tables of ``text`` that name a method (and, with ``need_protocol``, a
    protocol; else portraits) is the leaderboard's cell for that method, protocol and metric; returns how many."""
    boards = {p: _leaderboard_rows(p) for p in ("portraits", "mini-stills", "mini-video")}
    checked = 0
    for header, rows in _tables(text):
        if "method" not in header or (need_protocol and "protocol" not in header):
            continue
        for row in rows:
            cells = dict(zip(header, row))
            board = boards[cells.get("protocol", "portraits")][cells["method"]]
            for column, value in cells.items():
                metric = column.split()[0]
                if metric in board and metric not in ("method", "checkpoint", "precision", "pairs", "results"):
                    assert board[metric].startswith(value), (cells["method"], metric, value, board[metric])
                    checked += 1
    return checked


def test_readme_figures_are_the_leaderboards() -> None:
    """The README's expectations table quotes the leaderboards' cells."""
    assert _check_figures((ROOT / "README.md").read_text(), need_protocol=True) >= 20


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.parent.name)
def test_model_card_figures_are_the_leaderboards(card: Path) -> None:
    """Every figure in a card's results tables (rows naming a method; a `protocol` column, else portraits) is the
    leaderboard's cell for that method, protocol and metric, and the leaderboard row is of the card's checkpoint."""
    checked = _check_figures(card.read_text())
    assert checked >= 20
    own = _leaderboard_rows("portraits")[card.parent.name]["checkpoint"].strip("`")
    assert own and own in card.read_text()


TEMPORAL_RESULTS = ROOT / "leaderboards" / "results" / "temporal"


def test_temporal_figures_are_the_committed_results() -> None:
    """The temporal table of docs/protocols.md quotes, per method, each figure's mean and 95 % interval from its
    committed results file in leaderboards/results/temporal/ (to the decimals its column shows), has a row for each
    such file, and names the command that wrote them."""
    from fsbench import results
    from fsbench.protocols.video import MiniVideo

    text = (ROOT / "docs" / "protocols.md").read_text()
    header, rows = next(t for t in _tables(text) if t[0][0] == "method" and any("flicker" in h for h in t[0]))
    tag, protocol = "consecutive16", MiniVideo(frames="consecutive:16")
    assert protocol.variant_tag == tag
    assert f"--protocol-option frames=consecutive:16 --out {TEMPORAL_RESULTS.relative_to(ROOT)}" in text
    for row in rows:
        result = results.load(TEMPORAL_RESULTS / results.file_name(row[0], protocol.name, protocol.version, 0, tag))
        for column, cell in zip(header[1:], row[1:]):
            agg = result["aggregates"][column.split("`")[1]]
            places = len(cell.split()[0].split(".")[1])
            low, high = agg["ci95"]
            assert cell.replace("−", "-") == f"{agg['mean']:.{places}f} [{low:.{places}f}, {high:.{places}f}]", row[0]
    assert sorted(row[0] for row in rows) == sorted(p.name.split("__")[0] for p in TEMPORAL_RESULTS.glob("*.json"))
    assert len(rows) >= 3 and len(header) == 6


# "session" means a rater's study session or an onnxruntime session, nothing else (no history narration).
_SESSION = re.compile("session", re.IGNORECASE)
_STUDY_FILES = ("fsbench/study/", "app.py", "tests/test_study")
_ALLOWED_EVERYWHERE = re.compile(r"InferenceSession|SessionOptions|session_state|onnxruntime session"
                                 r'|add_session_config_entry\("session\.[a-z_.]+"')
_ONNX_CODE = re.compile(r"(?:self\.|model\.|\()_?session\b"
                        r"|\b_?session(?=\.(?:run|get_inputs|get_outputs)\b|\s*=[^=]|\s*:\s*\w)")
_MANIFEST_KEY = {"fsbench/data/mini.json": re.compile(r'"session"'),  # pinned by the manifest's sha256
                 "fsbench/data/mini.py": re.compile(r'"session"|``session``')}


def _tracked_text_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def test_session_means_a_study_or_onnxruntime_session() -> None:
    """No tracked text file uses the word otherwise (this file names it to find it, and is skipped)."""
    offenders = []
    for path in _tracked_text_files():
        if path.startswith(_STUDY_FILES) or path == "tests/test_docs.py":
            continue
        data = (ROOT / path).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            rest = _ONNX_CODE.sub("", _ALLOWED_EVERYWHERE.sub("", line))
            if path in _MANIFEST_KEY:
                rest = _MANIFEST_KEY[path].sub("", rest)
            if _SESSION.search(rest):
                offenders.append(f"{path}:{n}: {line.strip()[:100]}")
    assert offenders == []


def test_code_cites_no_issue_numbers() -> None:
    """Comments and docstrings explain the code as it is; its history lives in git."""
    issue = re.compile(r"\bissues? #?\d+", re.IGNORECASE)
    offenders = [f"{path}:{n}: {line.strip()[:100]}" for path in _tracked_text_files() if path.endswith(".py")
                 for n, line in enumerate((ROOT / path).read_text(encoding="utf-8").splitlines(), 1)
                 if issue.search(line)]
    assert offenders == []
