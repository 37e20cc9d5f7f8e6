"""Every page whose URL names an object answers 404 when the object does not
exist — never a 500. The URL patterns are walked, not listed, so a new detail
page is covered the day it is added."""

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

MISSING = {"int": "987654", "uuid": str(uuid.UUID(int=1)), "slug": "no-such-thing", "str": "no-such-thing", "path": "no/such/thing"}
# Parameters that pick a page section or action rather than an object: a known value, so the object is what is missing.
KNOWN = {"section": "connectors", "action": "acknowledge", "fmt": "csv"}


def _routes(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            if "<" in route:
                yield route, entry


PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _names_an_object(route: str) -> bool:
    # The Django admin is read-only and Django's own; regex routes (exports) take no object.
    return not route.startswith("django-admin/") and "(?P" not in route and any(n not in KNOWN for _, n in PARAM.findall(route))


def _url(route: str) -> str:
    # Some pages name their object in the query (storage keys): give one there too.
    return "/" + PARAM.sub(lambda m: KNOWN.get(m[2], MISSING[m[1] or "str"]), route) + "?key=no-such-thing"


ROUTES = sorted({_url(route) for route, _ in _routes(get_resolver().url_patterns) if _names_an_object(route)})


@pytest.mark.parametrize("url", ROUTES)
def test_a_missing_object_is_a_404(client_as, url):
    client = client_as("admin")
    response = client.get(url)
    assert response.status_code in (404, 405), f"GET {url} answered {response.status_code}"
    if response.status_code == 405:  # a POST-only action: a missing object is a 404 there too (or the empty form a 422)
        response = client.post(url, {})
        assert response.status_code in (302, 404, 422), f"POST {url} answered {response.status_code}"
