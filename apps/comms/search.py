"""What the search box finds in comms: incidents by title, service or id."""

from django.db.models import Q

from apps.core.search import SearchHit, id_of

from .models import Incident


def incidents(text: str, limit: int) -> list[SearchHit]:
    match = Q(title__icontains=text) | Q(service__icontains=text)
    if (pk := id_of(text)) is not None:
        match |= Q(pk=pk)
    found = Incident.objects.filter(match).order_by("-opened_at")[:limit]
    return [
        SearchHit(kind="incident", title=f"#{i.pk} {i.title}", url=i.get_absolute_url(), detail=f"{i.severity} · {i.status}") for i in found
    ]
