"""``clghub check``: one result per thing that must be right before a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from clghub.config import ClghubConfig

__all__ = ["CheckResult", "config_check", "store_check"]


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    hints: list[str] = field(default_factory=list)


def config_check(config: ClghubConfig) -> CheckResult:
    enabled = [
        name
        for name in ("salesforce", "hubspot", "product_usage")
        if getattr(config.sources, name).enabled
    ]
    detail = f"{config.source_path}: valid; sources enabled: {', '.join(enabled) or 'none'}"
    return CheckResult("config", True, detail)


def store_check(config: ClghubConfig) -> CheckResult:
    from sqlalchemy.exc import SQLAlchemyError

    from clghub.store.engine import create_store_engine, describe_url, store_url
    from clghub.store.migrate import current_revision, head_revision

    url = store_url(config)
    try:
        engine = create_store_engine(url)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        return CheckResult(
            "store",
            False,
            f"{describe_url(url)}: cannot connect: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}",
        )
    head = head_revision()
    if current == head:
        return CheckResult("store", True, f"{describe_url(url)}: schema at {head}")
    if config.store.auto_migrate:
        return CheckResult(
            "store",
            True,
            f"{describe_url(url)}: schema {current or 'empty'}, upgraded to {head} on next run",
        )
    return CheckResult(
        "store",
        False,
        f"{describe_url(url)}: schema {current or 'empty'}, needs {head}",
        ["run: clghub migrate"],
    )
