"""Read ``clghub.toml`` into :class:`ClghubConfig`, or fail with one line per problem."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from clghub.config.models import ClghubConfig
from clghub.config.refs import SecretRef
from clghub.config.secrets import SecretError, parse_secrets_file, resolve_secret

__all__ = ["ConfigError", "ConfigProblem", "default_config_path", "load_config", "parse_config"]

DEFAULT_CONFIG_NAME = "clghub.toml"
CONFIG_ENV = "CLGHUB_CONFIG"


class ConfigProblem:
    """One problem: the file, the key path and what is wrong."""

    __slots__ = ("file", "key", "message")

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key}: {self.message}"
            if self.key
            else f"{self.file}: {self.message}"
        )

    def __repr__(self) -> str:
        return f"ConfigProblem({self!s})"


class ConfigError(Exception):
    """The configuration cannot be used; :attr:`problems` says why, one line each."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def default_config_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> ClghubConfig:
    """Load, validate and resolve the secrets of the config file at ``path``."""
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(label, "", "no such file (copy config.example.toml to start one)")]
        ) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(label, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(label, "", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(label, "", f"invalid TOML: {exc}")]) from None
    return parse_config(data, label=label, base_dir=path.resolve().parent, environ=environ)


def parse_config(
    data: dict[str, Any],
    *,
    label: str = DEFAULT_CONFIG_NAME,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClghubConfig:
    """Validate already-parsed TOML data (tests and the sandbox use this)."""
    base = base_dir or Path.cwd()
    try:
        config = ClghubConfig.model_validate({**data, "base_dir": base})
    except ValidationError as exc:
        raise ConfigError(_problems(exc, label)) from None
    config.source_path = Path(label)
    _resolve_secrets(config, label=label, environ=os.environ if environ is None else environ)
    return config


# --------------------------------------------------------------------------- errors

_KEY_HINT = re.compile(r"^@([^@]+)@ (.*)$", re.DOTALL)


def _problems(exc: ValidationError, label: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"] if part != "base_dir"]
        message = str(error["msg"])
        kind = error["type"]
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        hint = _KEY_HINT.match(message)
        if hint:
            loc.extend(hint.group(1).split("."))
            message = hint.group(2)
        if kind == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif kind == "missing":
            message = "required, but missing"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            message = f"{_lower_first(message)} (got {_describe(error.get('input'))})"
        elif kind == "literal_error" and loc and loc[-1] == "[key]":
            loc.pop()
            message = f"unknown name '{error.get('input')}'; {_lower_first(message).replace('input should be', 'expected')}"
        elif kind == "literal_error":
            message = f"{_lower_first(message)} (got {_describe(error.get('input'))})"
        elif message.startswith("Input should"):
            message = _lower_first(message)
        # Tagged unions (str | SecretRef) add the member name to the location.
        loc = [
            part for part in loc if part not in ("str", "SecretRef", "function-plain[_validate()]")
        ]
        key = ".".join(loc)
        # A union (str | SecretRef) reports once per member; one line is enough.
        if not any(p.key == key for p in problems):
            problems.append(ConfigProblem(label, key, message))
    return problems


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown_key_message(loc: list[str]) -> str:
    key = loc[-1] if loc else ""
    candidates = _known_keys(loc[:-1])
    close = difflib.get_close_matches(key, candidates, n=1)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return "unknown key"


def _known_keys(parent: list[str]) -> list[str]:
    model: Any = ClghubConfig
    for part in parent:
        if getattr(model, "__origin__", None) is dict:
            # A dict-valued section (value_score.segments.<name>): skip the name.
            model = _model_of(model.__args__[-1])
        elif isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            model = None if field is None else _model_of(field.annotation)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [name for name in model.model_fields if name not in ("base_dir", "source_path")]
    return []


def _model_of(annotation: Any) -> Any:
    """The model (or dict of models) a field holds, looking through Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if getattr(annotation, "__origin__", None) is dict:
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- secrets


def _resolve_secrets(config: ClghubConfig, *, label: str, environ: Mapping[str, str]) -> None:
    secrets_file: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    if config.secrets_file:
        path = config.resolve_path(config.secrets_file)
        try:
            secrets_file = parse_secrets_file(path)
        except FileNotFoundError:
            problems.append(ConfigProblem(label, "secrets_file", f"no such file: {path}"))
        except (OSError, SecretError) as exc:
            problems.append(ConfigProblem(label, "secrets_file", str(exc)))
    for key, ref in _secret_refs(config, ()):
        if ref.resolved:
            continue
        try:
            ref.bind(
                resolve_secret(
                    ref.as_mapping(),
                    environ=environ,
                    secrets_file=secrets_file,
                    base_dir=config.base_dir,
                )
            )
        except SecretError as exc:
            problems.append(ConfigProblem(label, ".".join(key), str(exc)))
    if problems:
        raise ConfigError(problems)


def _secret_refs(
    model: BaseModel, prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], SecretRef]]:
    """Every secret reference in enabled sections, with its key path."""
    if getattr(model, "enabled", True) is False:
        return
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = (*prefix, name)
        if isinstance(value, SecretRef):
            yield path, value
        elif isinstance(value, BaseModel):
            yield from _secret_refs(value, path)
