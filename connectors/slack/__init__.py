"""Slack: a resilient WebClient, mrkdwn escaping, and posting that never posts twice."""

from clghub.connectors.slack.client import web_client
from clghub.connectors.slack.messenger import SlackMessenger, SlackRefused

__all__ = ["SlackMessenger", "SlackRefused", "web_client"]
