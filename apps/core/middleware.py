import uuid

from django.conf import settings


def client_ip(request) -> str | None:
    """The caller's address; behind a proxy, the header named by CLIENT_IP_HEADER."""
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if header and header in request.META:
        return request.META[header].split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class RequestIdMiddleware:
    """Gives every request an id (kept from X-Request-ID when a proxy set a sane one)
    that appears in the audit log, the logs and error pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = incoming if incoming.isalnum() and len(incoming) <= 64 else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response
