"""README is the short entry point: its picture is committed and small, and every page of
docs/ is linked from it, with every relative link of README and docs/ pointing at a file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(page.read_text()) if "://" not in t]


def test_readme_links_every_docs_page_and_every_link_resolves() -> None:
    readme = ROOT / "README.md"
    linked = {(ROOT / t).resolve() for t in _relative_links(readme)}
    pages = sorted((ROOT / "docs").glob("*.md"))
    assert pages
    for page in pages:
        assert page.resolve() in linked, f"README does not link {page.relative_to(ROOT)}"
    for page in [readme, *pages]:
        for target in _relative_links(page):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_readme_shows_the_demo_picture_small_and_stays_short() -> None:
    text = (ROOT / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:20])
    assert "](docs/demo_overlay.png)" in first_screen
    assert "python -m sam2_ros.bags.overlay_strip" in text  # how to draw it again
    picture = ROOT / "docs" / "demo_overlay.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size < 300_000
    assert len(text.splitlines()) <= 230, "README is the short entry point; move detail to docs/"
