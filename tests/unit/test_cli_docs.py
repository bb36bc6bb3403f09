"""Every command has help with an example, and the README documents it."""

from __future__ import annotations

from pathlib import Path

import typer

from clghub.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[tuple[str, object]]:
    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            found.extend((f"{name} {sub}", subcommand) for sub, subcommand in subcommands.items())
        else:
            found.append((name, command))
    return found


def test_every_command_has_an_example() -> None:
    missing = [name for name, command in _commands() if "Example: clghub" not in (command.help or "")]  # type: ignore[attr-defined]
    assert missing == []


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name, _ in _commands() if f"`clghub {name}" not in readme]
    assert missing == []


def test_the_readme_names_the_ci_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if line and not line.startswith("#")][-1]
    assert command == "python -m pytest"
    assert f"\n{command}\n" in readme
    assert "\nclghub demo\n" in readme
