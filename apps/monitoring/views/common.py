from __future__ import annotations

from django.core.paginator import Paginator

from ..models import PrometheusSource

PAGE_SIZE = 50


def source_context(request) -> dict:
    """The source a page shows (?source=name, else "default") and the choices for its selector."""
    names = list(PrometheusSource.objects.values_list("name", flat=True))
    chosen = request.GET.get("source") or ("default" if "default" in names or not names else names[0])
    return {"source": chosen, "sources": names}


def paginate(request, items: list):
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def query_string(request, *drop: str) -> str:
    """The current filters, for pagination links."""
    params = request.GET.copy()
    for name in ("page", *drop):
        params.pop(name, None)
    return params.urlencode()
