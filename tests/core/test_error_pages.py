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
