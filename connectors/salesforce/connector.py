"""The Salesforce connector: streams for the sync runner and the checks of ``clghub check``."""

from __future__ import annotations

from clghub.checks import CheckResult
from clghub.config.models import SalesforceSourceConfig
from clghub.connectors.salesforce.client import SalesforceClient
from clghub.connectors.salesforce.streams import SalesforceStream
from clghub.errors import ClghubError
from clghub.http import TransientError
from clghub.sync.mapping import SourceMapping

__all__ = ["SalesforceConnector"]


class SalesforceConnector:
    source = "salesforce"

    def __init__(
        self, config: SalesforceSourceConfig, client: SalesforceClient | None = None
    ) -> None:
        self.config = config
        self.client = client or SalesforceClient(config)

    def streams(self, mapping: SourceMapping) -> list[SalesforceStream]:
        return [
            SalesforceStream(self.client, sobject, mapping.streams[sobject], self.config)
            for sobject in self.config.objects
            if sobject in mapping.streams
        ]

    def check(self, mapping: SourceMapping) -> list[CheckResult]:
        try:
            instance = self.client.instance_url
        except (ClghubError, TransientError) as exc:
            return [
                CheckResult("salesforce", False, f"cannot log in at {self.config.login_url}: {exc}")
            ]
        results = [
            CheckResult(
                "salesforce", True, f"logged in ({self.config.auth} flow), instance {instance}"
            )
        ]
        for stream in self.streams(mapping):
            try:
                stream.fields()
            except (ClghubError, TransientError) as exc:
                results.append(CheckResult(f"salesforce {stream.name}", False, str(exc)))
                continue
            if stream.warnings:
                results.append(CheckResult(f"salesforce {stream.name}", False, stream.warnings[0]))
            else:
                results.append(
                    CheckResult(
                        f"salesforce {stream.name}",
                        True,
                        f"{len(stream.fields())} mapped fields present",
                    )
                )
        if self.client.api_used is not None:
            results.append(
                CheckResult(
                    "salesforce quota",
                    True,
                    f"API usage {self.client.api_used}/{self.client.api_max} today",
                )
            )
        return results

    def close(self) -> None:
        self.client.close()
