"""The product usage connector: one stream of daily usage, from REST, files or SQL."""

from __future__ import annotations

from typing import Any

from clghub.checks import CheckResult
from clghub.config.models import ClghubConfig
from clghub.connectors.product_usage.sources import FileUsageStream, RestUsageStream, SqlUsageStream
from clghub.errors import ClghubError
from clghub.http import TransientError
from clghub.sync.mapping import SourceMapping

__all__ = ["ProductUsageConnector"]


class ProductUsageConnector:
    source = "product_usage"

    def __init__(self, config: ClghubConfig) -> None:
        self.config = config
        self.section = config.sources.product_usage
        self._open: list[Any] = []

    def streams(
        self, mapping: SourceMapping
    ) -> list[RestUsageStream | FileUsageStream | SqlUsageStream]:
        section = self.section
        events = section.records == "events"
        stream_mapping = mapping.streams["events" if events else "daily"]
        stream: RestUsageStream | FileUsageStream | SqlUsageStream
        if section.kind == "rest":
            assert section.rest is not None
            stream = RestUsageStream(section.rest, stream_mapping)
        elif section.kind == "files":
            assert section.files is not None
            stream = FileUsageStream(section.files, stream_mapping, self.config, events=events)
        else:
            assert section.sql is not None
            stream = SqlUsageStream(section.sql, stream_mapping)
        self._open.append(stream)
        return [stream]

    def check(self, mapping: SourceMapping) -> list[CheckResult]:
        section = self.section
        if section.kind == "files":
            assert section.files is not None
            stream = FileUsageStream(
                section.files,
                mapping.streams["events" if section.records == "events" else "daily"],
                self.config,
                events=section.records == "events",
            )
            found = stream.files()
            where = self.config.resolve_path(section.files.path)
            return [
                CheckResult("product_usage", bool(found), f"{len(found)} usage files at {where}")
            ]
        try:
            (stream_obj,) = self.streams(mapping)
            if isinstance(stream_obj, RestUsageStream):
                status = stream_obj.probe()
                return [
                    CheckResult(
                        "product_usage", True, f"{stream_obj.config.base_url} answered {status}"
                    )
                ]
            if isinstance(stream_obj, SqlUsageStream):
                with stream_obj.engine.connect():
                    pass
                return [CheckResult("product_usage", True, "database reachable")]
        except (ClghubError, TransientError, OSError) as exc:
            return [CheckResult("product_usage", False, str(exc))]
        except Exception as exc:
            return [CheckResult("product_usage", False, f"{type(exc).__name__}: {exc}")]
        finally:
            self.close()
        return []

    def close(self) -> None:
        for stream in self._open:
            closer = getattr(stream, "close", None)
            if closer is not None:
                closer()
        self._open.clear()
