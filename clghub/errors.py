"""The errors clghub reports to people, and how the CLI maps them to exit codes."""

from __future__ import annotations

__all__ = ["ClghubError", "UsageError"]


class ClghubError(Exception):
    """A run failed for a reason worth one clear line (exit code 1)."""

    exit_code = 1


class UsageError(ClghubError):
    """The command cannot run as asked (exit code 2), e.g. an unknown export name."""

    exit_code = 2
