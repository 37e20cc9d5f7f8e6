"""What the search box finds in the audit log: an event by its number, or the
latest events on a target (prefix: the log is large, a prefix uses the index)."""

from django.db.models import Q
from django.urls import reverse

from apps.core.search import SearchHit, id_of

from .models import AuditEvent


def events(text: str, limit: int) -> list[SearchHit]:
    match = Q(target__startswith=text) | Q(request_id=text)
    if (seq := id_of(text)) is not None:
        match |= Q(seq=seq)
    found = AuditEvent.objects.filter(match).order_by("-seq")[:limit]
    return [
        SearchHit(kind="audit event", title=f"#{e.seq} {e.operation} {e.target}", url=reverse("audit:detail", args=[e.seq]),
                  detail=f"{e.actor or '—'} · {e.outcome} · {e.at:%Y-%m-%d %H:%M}")
        for e in found
    ]  # fmt: skip
