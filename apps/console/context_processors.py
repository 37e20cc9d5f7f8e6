"""What the base template shows on every page: each app's entry in the navigation and the badges."""

from functools import lru_cache

from django.apps import apps
from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse

from apps.approvals.models import ApprovalRequest
from apps.core.web import actor_of


@lru_cache(maxsize=256)
def _reversed(url_name: str, urlconf: str, prefix: str) -> str:
    return reverse(url_name, urlconf=urlconf)


def url_of(url_name: str) -> str:
    """A menu entry's URL (one without arguments): reversed once per URLconf and script prefix, not
    on every page (the menus name some twenty URLs a page: ~0.3 ms of CPU)."""
    return _reversed(url_name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


def nav_items(actor, path: str = "") -> list[dict]:
    """Each app adds itself to the navigation with `nav = [(position, label, url name,
    permission)]` on its AppConfig; an entry shows only to roles holding that permission."""
    items = []
    for config in apps.get_app_configs():
        for position, label, url_name, perm in getattr(config, "nav", ()):
            if actor.has_perm(perm):
                url = url_of(url_name)
                items.append({"position": position, "label": label, "url": url, "app": config.label, "active": path.startswith(url)})
    return sorted(items, key=lambda item: item["position"])


def subnav_items(actor, request) -> list[dict]:
    """The current app's sub-menu, from `subnav = [(label, url name, permission)]` on its
    AppConfig: one component for every app. Query parameters named in the app's
    `subnav_keeps` (monitoring's `source`) follow from page to page."""
    match = getattr(request, "resolver_match", None)
    config = next((c for c in apps.get_app_configs() if match and c.label == match.namespace), None)
    if config is None:
        return []
    kept = "&".join(f"{k}={request.GET[k]}" for k in getattr(config, "subnav_keeps", ()) if request.GET.get(k))
    items = []
    for label, url_name, perm in getattr(config, "subnav", ()):
        if actor.has_perm(perm):
            url = url_of(url_name)
            items.append({"label": label, "url": url + (f"?{kept}" if kept else ""), "active": request.path == url})
    return items


def console(request):
    """Navigation and badges for the base template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"environment": settings.ENVIRONMENT}
    actor = actor_of(request)
    return {
        "environment": settings.ENVIRONMENT,
        "actor": actor,
        "nav_items": nav_items(actor, request.path),
        "subnav_items": subnav_items(actor, request),
        # What needs *your* action: requests you may vote on (not yours, not voted yet).
        "nav_pending_approvals": ApprovalRequest.objects.awaiting_vote_of(actor).count(),
        "nav_unread": user.notifications.filter(read_at__isnull=True).count(),
    }
