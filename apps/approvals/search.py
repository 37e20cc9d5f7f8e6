"""What the search box finds in approvals: requests by id, operation or target."""

from django.db.models import Q

from apps.core.search import SearchHit, id_of

from .models import ApprovalRequest


def approvals(text: str, limit: int) -> list[SearchHit]:
    match = Q(operation__icontains=text) | Q(target__icontains=text)
    if (pk := id_of(text)) is not None:
        match |= Q(pk=pk)
    found = ApprovalRequest.objects.filter(match).order_by("-pk")[:limit]
    return [SearchHit(kind="approval", title=f"#{a.pk} {a.operation} {a.target}", url=a.get_absolute_url(), detail=a.status) for a in found]
