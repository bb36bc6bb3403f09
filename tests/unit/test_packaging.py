"""The wheel installs one namespace, clghub.*, and ships its data files."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {
    "clghub": "clghub",
    "connectors": "clghub.connectors",
    "workflows": "clghub.workflows",
    "mappings": "clghub.mappings",
}


def _packages_on_disk() -> set[str]:
    found = set()
    for top, namespace in MAPPED.items():
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top)
            parts = [p for p in relative.parts if p]
            found.add(".".join([namespace, *parts]))
    return found


def test_every_package_is_listed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    assert _packages_on_disk() == listed


def test_wheel_has_one_namespace(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("clghub-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"clghub"}
    assert "clghub/connectors/__init__.py" in names
    assert "clghub/workflows/__init__.py" in names
    assert "clghub/mappings/__init__.py" in names
    assert "clghub/store/migrations/script.py.mako" in names
    assert any(n.startswith("clghub/store/migrations/versions/0001") for n in names)
    assert "clghub/py.typed" in names
