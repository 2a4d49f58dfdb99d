"""The committed build (src/studio402/api/static) was made from the current web/ sources."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "src" / "studio402" / "api" / "static"


def sources_hash() -> str:
    """Same bytes as web/stamp.mjs hashes."""
    files = ["index.html", "admin.html", "vite.config.ts", "package-lock.json"]
    files += [f"src/{p.name}" for p in sorted((WEB / "src").iterdir())]
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (WEB / name).read_bytes() + b"\0")
    return digest.hexdigest()


def test_the_built_files_match_the_sources() -> None:
    stamped = (STATIC / "SOURCES.sha256").read_text().strip()
    assert stamped == sources_hash(), "web/ changed: run `npm run build` in web/ and commit the output"


def test_the_pages_reference_only_built_assets() -> None:
    for page in ("index.html", "admin.html"):
        text = (STATIC / page).read_text()
        assert "/src/" not in text
        for asset in re.findall(r'(?:src|href)="/assets/([^"]+)"', text):
            assert (STATIC / "assets" / asset).is_file(), asset
