"""The Kestra-compatible REST API: one route table (`routes`), thin tornado handlers (`handlers`) over a
transport-free service (`service`), Kestra's errors (`errors`), SSE framing (`sse`), Basic auth (`auth`)
and the OpenAPI document derived from the table (`openapi`)."""
from __future__ import annotations

from .routes import ROUTES, Route, Router, served_routes

__all__ = ["ROUTES", "Route", "Router", "served_routes"]
