import ipaddress
import logging
import uuid

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError

from .errors_views import database_unavailable, error_response

log = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    """The caller's address; behind a proxy, the one the proxies put in the header named by CLIENT_IP_HEADER
    (`address_of`). What is no IP address there is no address: None — never stored in the audit log's address
    column, never matched against an allow-list."""
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    return address_of(request.META.get(header) if header else None, request.META.get("REMOTE_ADDR"))


def address_of(forwarded: str | None, peer: str | None) -> str | None:
    """The caller's address, for the web and MCP alike. Behind proxies (`forwarded`: the header's value, None when
    CLIENT_IP_HEADER is unset or the request has none), the one CLIENT_IP_PROXIES from the header's right end: each
    proxy appends the address it was called from (X-Forwarded-For), so what stands further left came from the client
    and may be forged — taking the first one let a client choose its own address (its rate limits, the audit log).
    A header with fewer addresses than proxies did not come through them all: the connection's (`peer`) counts.
    What is no IP address is None."""
    hops = forwarded.split(",") if forwarded else []
    count = max(1, settings.CLIENT_IP_PROXIES)
    return ip_or_none(hops[-count] if len(hops) >= count else peer)


def ip_or_none(value: str | None) -> str | None:
    """`value` as a normalised IP address (a zone index dropped), or None when it is none."""
    try:
        return str(ipaddress.ip_address((value or "").strip().split("%")[0]))
    except ValueError:
        return None


def rate_limit_address(request) -> str:
    """The address the views' rate limits count per (django-ratelimit's RATELIMIT_IP_META_KEY): `client_ip`, so
    that behind a proxy each client counts on its own and not the proxy for all. A header value that is no IP
    address (forged, or a proxy's odd form) counts as the connection's own address, never as a key of its own."""
    # "0.0.0.0": a key, not a bind — no address at all (a unix socket, no proxy header), one bucket
    return client_ip(request) or ip_or_none(request.META.get("REMOTE_ADDR")) or "0.0.0.0"  # noqa: S104


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


class UnavailableMiddleware:
    """A view that needed a dependency that does not answer gets a clear 503 page, not a 500:
    the console's Redis (a login rate limit, a cache read; the gateway's own calls go through
    a breaker, apps.core.resilience.redis_call, and fail faster still), or its database —
    that page stands alone, as rendering the usual one would look the user up again."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, redis.RedisError):
            log.warning("request %s: Redis did not answer: %s", getattr(request, "request_id", ""), exception)
            message = "The console's Redis (rate limits, live updates, job queue) does not answer; try again in a minute."
            return error_response(request, message, 503)
        if isinstance(exception, (OperationalError, InterfaceError)):
            log.warning("request %s: the database did not answer: %s", getattr(request, "request_id", ""), exception)
            return database_unavailable()
        return None
