"""Block Kit validation as chat.postMessage applies it.

Slack rejects a message whose blocks break the published limits with
``invalid_blocks`` (and the broken places as JSON pointers in ``errors``),
blocks that are not a JSON array of objects with ``invalid_blocks_format``,
and text that is too long with ``msg_too_long``. Limits:
https://docs.slack.dev/reference/block-kit/blocks
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "MAX_BLOCKS",
    "MAX_MESSAGE_TEXT",
    "BlockProblem",
    "parse_blocks",
    "text_length",
    "validate_blocks",
]

MAX_BLOCKS = 50
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT = 3_000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS = 25
MAX_BLOCK_ID = 255
MAX_MARKDOWN_TEXT = 12_000
MAX_ALT_TEXT = 2_000

_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "divider",
        "context",
        "image",
        "actions",
        "rich_text",
        "input",
        "file",
        "video",
        "markdown",
    }
)
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


class BlockProblem(Exception):
    """Why a message's blocks are refused: Slack's error code and the details."""

    def __init__(self, error: str, details: list[str]) -> None:
        super().__init__(f"{error}: {'; '.join(details)}")
        self.error = error
        self.details = details


def parse_blocks(raw: Any) -> list[dict[str, Any]] | None:
    """Blocks as sent: a list (JSON body) or a JSON-encoded string (form body)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str | bytes):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BlockProblem("invalid_blocks_format", ["blocks is not valid JSON"]) from None
    if not isinstance(raw, list) or not all(isinstance(block, dict) for block in raw):
        raise BlockProblem("invalid_blocks_format", ["blocks must be an array of objects"])
    return raw


def _text_object(value: Any, pointer: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return [f"must be a text object [json-pointer:{pointer}]"]
    kind = value.get("type")
    if kind not in _TEXT_TYPES or (plain_only and kind != "plain_text"):
        allowed = "plain_text" if plain_only else "plain_text or mrkdwn"
        return [f"must be {allowed} [json-pointer:{pointer}/type]"]
    text: str = value["text"]
    if not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]"]
    return []


def _elements(block: dict[str, Any], pointer: str, limit: int) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"must provide at least one element [json-pointer:{pointer}/elements]"]
    if len(elements) > limit:
        return [f"no more than {limit} items allowed [json-pointer:{pointer}/elements]"]
    if not all(
        isinstance(element, dict) and isinstance(element.get("type"), str) for element in elements
    ):
        return [f"each element must be an object with a type [json-pointer:{pointer}/elements]"]
    return []


def _block(block: dict[str, Any], pointer: str) -> list[str]:
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        return [f"unsupported type: {kind!r} [json-pointer:{pointer}/type]"]
    problems: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        problems.append(
            f"must be a string of at most {MAX_BLOCK_ID} characters [json-pointer:{pointer}/block_id]"
        )
    if kind == "header":
        problems += _text_object(
            block.get("text"), f"{pointer}/text", limit=MAX_HEADER_TEXT, plain_only=True
        )
    elif kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            problems.append(f"must provide text or fields [json-pointer:{pointer}]")
        if text is not None:
            problems += _text_object(text, f"{pointer}/text", limit=MAX_SECTION_TEXT)
        if fields is not None:
            if not isinstance(fields, list) or not fields:
                problems.append(f"must be a non-empty array [json-pointer:{pointer}/fields]")
            elif len(fields) > MAX_FIELDS:
                problems.append(
                    f"no more than {MAX_FIELDS} items allowed [json-pointer:{pointer}/fields]"
                )
            else:
                for n, item in enumerate(fields):
                    problems += _text_object(item, f"{pointer}/fields/{n}", limit=MAX_FIELD_TEXT)
        accessory = block.get("accessory")
        if accessory is not None and not isinstance(accessory, dict):
            problems.append(f"must be an object [json-pointer:{pointer}/accessory]")
    elif kind == "context":
        problems += _elements(block, pointer, MAX_CONTEXT_ELEMENTS)
    elif kind == "actions":
        problems += _elements(block, pointer, MAX_ACTIONS)
    elif kind == "image":
        if not isinstance(block.get("image_url"), str) and not isinstance(
            block.get("slack_file"), dict
        ):
            problems.append(f"must provide image_url or slack_file [json-pointer:{pointer}]")
        alt = block.get("alt_text")
        if not isinstance(alt, str) or not alt or len(alt) > MAX_ALT_TEXT:
            problems.append(
                f"must be 1 to {MAX_ALT_TEXT} characters [json-pointer:{pointer}/alt_text]"
            )
        if block.get("title") is not None:
            problems += _text_object(
                block["title"], f"{pointer}/title", limit=MAX_ALT_TEXT, plain_only=True
            )
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or not text or len(text) > MAX_MARKDOWN_TEXT:
            problems.append(
                f"must be 1 to {MAX_MARKDOWN_TEXT} characters [json-pointer:{pointer}/text]"
            )
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        problems.append(f"must provide elements [json-pointer:{pointer}/elements]")
    return problems


def validate_blocks(blocks: list[dict[str, Any]]) -> None:
    """Raise :class:`BlockProblem` when Slack would refuse ``blocks``."""
    if len(blocks) > MAX_BLOCKS:
        raise BlockProblem(
            "invalid_blocks", [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
        )
    problems: list[str] = []
    seen: set[str] = set()
    for n, block in enumerate(blocks):
        problems += _block(block, f"/blocks/{n}")
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen:
                problems.append(
                    f"duplicate block_id {block_id!r} [json-pointer:/blocks/{n}/block_id]"
                )
            seen.add(block_id)
    if problems:
        raise BlockProblem("invalid_blocks", problems)
    if text_length(blocks) > MAX_MESSAGE_TEXT:
        raise BlockProblem(
            "msg_too_long", [f"the blocks hold more than {MAX_MESSAGE_TEXT} characters of text"]
        )


def text_length(value: Any) -> int:
    """Characters of text anywhere inside ``value`` (the ``text`` strings of blocks)."""
    if isinstance(value, dict):
        total = 0
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                total += len(item)
            else:
                total += text_length(item)
        return total
    if isinstance(value, list):
        return sum(text_length(item) for item in value)
    return 0
