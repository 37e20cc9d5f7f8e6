"""One search box over every app: each app registers what it can find, with the
permission a person needs to see it; `core.search` asks only the searchers the
caller may see, so results never show what the role cannot open."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

from .jobs import Context
from .operations import Risk, operation


class SearchHit(BaseModel):
    kind: str = Field(description="service, deployment, incident, finding, approval, audit event, …")
    title: str
    url: str = Field(description="The console page of the hit.")
    detail: str = ""


@dataclass(frozen=True)
class Searcher:
    kind: str
    permission: str
    find: Callable[[str, int], list[SearchHit]]  # (text, limit) -> hits


_searchers: dict[str, Searcher] = {}


def on_search(kind: str, permission: str, find: Callable[[str, int], list[SearchHit]]) -> None:
    """Register from an AppConfig.ready(): `find(text, limit)` matches names and ids."""
    _searchers[kind] = Searcher(kind, permission, find)


class SearchInput(BaseModel):
    q: str = Field(min_length=1, max_length=200, description="A name, part of a name, or an id (#12 or 12).")
    limit: int = Field(8, ge=1, le=50, description="Most hits per kind.")


class SearchOutput(BaseModel):
    hits: list[SearchHit]


@operation("core.search", risk=Risk.READ, permission="core.search", target=lambda p: p.q)
def search(ctx: Context, params: SearchInput) -> SearchOutput:
    """Find services, deployments, incidents, findings, approvals and audit events by name or id; only kinds the caller may see."""
    text = params.q.strip().lstrip("#")
    hits: list[SearchHit] = []
    for searcher in _searchers.values():
        if ctx.actor.has_perm(searcher.permission):
            hits += searcher.find(text, params.limit)
    return SearchOutput(hits=hits)


def id_of(text: str) -> int | None:
    """The id a search text names, if it is one (`12`)."""
    return int(text) if text.isdigit() and len(text) < 12 else None
