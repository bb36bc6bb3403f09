"""Secrets: references in the config, values only in memory.

A secret in ``clghub.toml`` is never a literal. It is a reference:

    access_token = { env = "HUBSPOT_ACCESS_TOKEN" }
    private_key = { file = "/run/secrets/sf.key" }

``env`` is looked up in the process environment first, then in the
``secrets_file`` named at the top of the config (``KEY=VALUE`` lines).
Every resolved value is registered with :data:`REDACTOR`, which the log
handlers and the CLI's error printer run over everything they emit.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REDACTOR", "Redactor", "Secret", "SecretError", "parse_secrets_file", "resolve_secret"]

# Values shorter than this are not redacted by substring: replacing every "a"
# in a log line would destroy it and protect nothing.
_MIN_REDACT_LEN = 4


class SecretError(ValueError):
    """A secret reference that cannot be resolved (unset variable, missing file)."""


class Secret:
    """A resolved secret value that never shows itself.

    ``repr`` and ``str`` name where the value came from, not the value; use
    :meth:`reveal` at the one place that hands it to a client library.
    """

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self._source = source
        REDACTOR.register(value)

    def reveal(self) -> str:
        return self._value

    @property
    def source(self) -> str:
        return self._source

    def __repr__(self) -> str:
        return f"Secret({self._source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value to disk (e.g. a scheduler job store).
        raise TypeError("a Secret cannot be pickled")


_ISSUED_KEPT = 32
"""Issued tokens the redactor remembers, newest first (see :meth:`Redactor.register_issued`)."""


@dataclass
class Redactor:
    """Replaces every registered secret value in a string with ``***``.

    Configured secrets are kept for the life of the process. Tokens a service
    issues at run time (access tokens, session ids, rotated refresh tokens)
    are kept while they can still be in use, the newest :data:`_ISSUED_KEPT`:
    a scheduler logs in again every run, and remembering every token it was
    ever given would grow memory and the redaction pattern without end.
    """

    _values: set[str] = field(default_factory=set)
    _issued: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _issued_now: tuple[str, ...] = ()
    """A snapshot of ``_issued`` that :meth:`redact` reads without the lock."""
    _pattern: re.Pattern[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, value: str) -> None:
        """A configured secret: redacted for the life of the process."""
        if len(value) < _MIN_REDACT_LEN:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            if value in self._issued:
                del self._issued[value]
                self._issued_now = tuple(self._issued)
            self._compile()

    def register_issued(self, value: str) -> None:
        """A token a service issued: redacted until many newer tokens have replaced it."""
        if len(value) < _MIN_REDACT_LEN:
            return
        with self._lock:
            if value in self._values:
                return
            if value in self._issued:
                self._issued.move_to_end(value)
                return
            # Replaced by plain substring search, not compiled into the pattern:
            # a pattern per login would fill the re module's cache for nothing.
            self._issued[value] = None
            while len(self._issued) > _ISSUED_KEPT:
                self._issued.popitem(last=False)
            self._issued_now = tuple(self._issued)

    def _compile(self) -> None:
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def redact(self, text: str) -> str:
        for token in self._issued_now:
            if token in text:
                text = text.replace(token, "***")
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub("***", text)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._issued.clear()
            self._issued_now = ()
            self._pattern = None


REDACTOR = Redactor()

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_secrets_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines (``#`` comments, optional quotes)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise SecretError(f"{path}: line {number}: expected KEY=VALUE")
        key, value = match.group(1), match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def resolve_secret(
    reference: Mapping[str, object],
    *,
    environ: Mapping[str, str],
    secrets_file: Mapping[str, str],
    base_dir: Path,
) -> Secret:
    """Turn ``{env = NAME}`` or ``{file = PATH}`` into a :class:`Secret`."""
    keys = set(reference)
    if keys == {"env"}:
        name = reference["env"]
        if not isinstance(name, str) or not name:
            raise SecretError("'env' must name an environment variable")
        if name in environ and environ[name] != "":
            return Secret(environ[name], f"env:{name}")
        if name in secrets_file and secrets_file[name] != "":
            return Secret(secrets_file[name], f"secrets_file:{name}")
        raise SecretError(f"environment variable {name} is not set")
    if keys == {"file"}:
        raw = reference["file"]
        if not isinstance(raw, str) or not raw:
            raise SecretError("'file' must be a path")
        path = Path(os.path.expanduser(raw))
        if not path.is_absolute():
            path = base_dir / path
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return Secret(value, f"file:{path}")
    raise SecretError('a secret is a reference: { env = "NAME" } or { file = "PATH" }')
