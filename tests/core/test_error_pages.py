"""Error pages (400, 403, 404, 500) share one template: a message a person can act on, never a trace."""

import pytest

pytestmark = pytest.mark.django_db


def test_error_pages_share_one_look(client_as, client):
    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
    from django.test import RequestFactory

    from apps.core import errors_views

    request = RequestFactory().get("/")
    request.user = client_as("viewer").user
    for view, status in ((errors_views.not_found, 404), (errors_views.forbidden, 403), (errors_views.bad_request, 400)):
        response = view(request, DjangoPermissionDenied())
        assert response.status_code == status and b'id="error-message"' in response.content


def test_error_pages_say_what_to_do(client_as):
    client = client_as("viewer")
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    html = missing.content.decode()
    assert "<h1>Not found" in html and 'id="error-hint"' in html and "Search for it" in html and 'href="/search/"' in html
    refused = client.get("/accounts/users/")  # an admin page
    assert refused.status_code == 403 and "<h1>Not allowed" in refused.content.decode() and "Ask an admin" in refused.content.decode()
