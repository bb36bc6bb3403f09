"""The codebase stays clean: ruff and mypy (strict) pass over the installed layout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shadow_tree(tmp: Path) -> Path:
    """The import layout the wheel installs, as symlinks: clghub.connectors -> connectors/."""
    package = tmp / "clghub"
    package.mkdir()
    for entry in (ROOT / "clghub").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in ("connectors", "workflows", "mappings"):
        (package / name).symlink_to(ROOT / name)
    return tmp


def test_ruff() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy(tmp_path: Path) -> None:
    if os.environ.get("CLGHUB_SKIP_MYPY") == "1":
        pytest.skip("CLGHUB_SKIP_MYPY=1")
    shadow = _shadow_tree(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "-p",
            "clghub",
        ],
        cwd=shadow,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
