"""What the search box finds in security: findings by title, rule, target, package or id."""

from django.db.models import Q

from apps.core.search import SearchHit, id_of

from .models import Finding


def findings(text: str, limit: int) -> list[SearchHit]:
    match = Q(title__icontains=text) | Q(rule__icontains=text) | Q(target__icontains=text) | Q(package__iexact=text)
    if (pk := id_of(text)) is not None:
        match |= Q(pk=pk)
    found = Finding.objects.filter(match).order_by("-pk")[:limit]
    return [
        SearchHit(kind="finding", title=f"#{f.pk} {f.title}", url=f.get_absolute_url(), detail=f"{f.severity} · {f.status}") for f in found
    ]
