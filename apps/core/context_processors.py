from django.apps import apps
from django.conf import settings
from django.urls import reverse


def nav_items(actor, path: str = "") -> list[dict]:
    """Each app adds itself to the navigation with `nav = [(position, label, url name,
    permission)]` on its AppConfig; an entry shows only to roles holding that permission."""
    items = []
    for config in apps.get_app_configs():
        for position, label, url_name, perm in getattr(config, "nav", ()):
            if actor.has_perm(perm):
                url = reverse(url_name)
                items.append({"position": position, "label": label, "url": url, "app": config.label, "active": path.startswith(url)})
    return sorted(items, key=lambda item: item["position"])


def console(request):
    """Navigation and badges for the base template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"environment": settings.ENVIRONMENT}
    from apps.approvals.models import ApprovalRequest

    from .web import actor_of

    actor = actor_of(request)
    return {
        "environment": settings.ENVIRONMENT,
        "actor": actor,
        "nav_items": nav_items(actor, request.path),
        "nav_pending_approvals": ApprovalRequest.objects.filter(status__in=ApprovalRequest.OPEN).count()
        if actor.has_perm("approvals.approve_requests")
        else 0,
        "nav_unread": user.notifications.filter(read_at__isnull=True).count(),
    }
