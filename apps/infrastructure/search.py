"""What the search box finds in infrastructure: services by name, deployments by id."""

from django.db.models import Q

from apps.core.search import SearchHit, id_of

from .models import Deployment, Service


def services(text: str, limit: int) -> list[SearchHit]:
    found = Service.objects.filter(Q(name__icontains=text) | Q(environment__name__icontains=text)).select_related("environment")
    return [SearchHit(kind="service", title=str(s), url=s.get_absolute_url(), detail=s.strategy) for s in found[:limit]]


def deployments(text: str, limit: int) -> list[SearchHit]:
    pk = id_of(text)
    if pk is None:
        return []
    found = Deployment.objects.filter(pk=pk).select_related("service__environment", "revision")
    return [
        SearchHit(kind="deployment", title=f"deployment #{d.pk} of {d.service}", url=d.get_absolute_url(), detail=d.status) for d in found
    ]
