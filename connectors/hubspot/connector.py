"""The HubSpot connector: streams for the sync runner and the checks of ``clghub check``."""

from __future__ import annotations

from clghub.checks import CheckResult
from clghub.config.models import HubSpotSourceConfig
from clghub.connectors.hubspot.client import HubSpotClient
from clghub.connectors.hubspot.streams import HubSpotObjectStream, HubSpotOwnersStream
from clghub.errors import ClghubError
from clghub.http import TransientError
from clghub.sync.mapping import SourceMapping

__all__ = ["HubSpotConnector"]


class HubSpotConnector:
    source = "hubspot"

    def __init__(self, config: HubSpotSourceConfig, client: HubSpotClient | None = None) -> None:
        self.config = config
        self.client = client or HubSpotClient(config)

    def streams(self, mapping: SourceMapping) -> list[HubSpotObjectStream | HubSpotOwnersStream]:
        streams: list[HubSpotObjectStream | HubSpotOwnersStream] = []
        for name in self.config.objects:
            if name not in mapping.streams:
                continue
            if name == "owners":
                streams.append(HubSpotOwnersStream(self.client, mapping.streams[name]))
            else:
                streams.append(
                    HubSpotObjectStream(self.client, name, mapping.streams[name], self.config)
                )
        return streams

    def check(self, mapping: SourceMapping) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            self.client.owners_page(after=None, archived=False)
        except (ClghubError, TransientError) as exc:
            return [CheckResult("hubspot", False, f"cannot reach {self.config.base_url}: {exc}")]
        limit = self.client.pacer.limit
        results.append(
            CheckResult(
                "hubspot",
                True,
                f"authorized ({self.config.auth}); pacing at {limit} requests / 10 s",
            )
        )
        for stream in self.streams(mapping):
            if not isinstance(stream, HubSpotObjectStream):
                continue
            try:
                missing = stream.validate()
            except (ClghubError, TransientError) as exc:
                results.append(CheckResult(f"hubspot {stream.name}", False, str(exc)))
                continue
            if missing:
                results.append(CheckResult(f"hubspot {stream.name}", False, stream.warnings[0]))
            else:
                results.append(
                    CheckResult(
                        f"hubspot {stream.name}",
                        True,
                        f"{len(stream.properties)} mapped properties present",
                    )
                )
        return results

    def close(self) -> None:
        self.client.close()
