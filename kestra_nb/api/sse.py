"""Server-sent events framing as Kestra (Micronaut) writes it: an `id:` line, a `data:` line, a blank line."""
from __future__ import annotations

from typing import Any

from ..model.jsonfmt import dumps

CONTENT_TYPE = "text/event-stream"


def event(event_id: str, data: Any) -> bytes:
    """One event; `data` is JSON-encoded on a single line (Kestra's documents never span lines)."""
    text = data if isinstance(data, str) else dumps(data)
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"id: {event_id}\n{lines}\n".encode()


__all__ = ["CONTENT_TYPE", "event"]
