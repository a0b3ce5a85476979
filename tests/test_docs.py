"""The documentation a clone carries is complete in itself: the README links the architecture and protocol pages,
and nothing user-facing points outside the repository (../shared does not exist in a clone)."""
from __future__ import annotations

import re
from pathlib import Path

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
