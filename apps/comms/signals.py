"""Users' console notifications (approval decisions, finished jobs) also go out
through comms when the user set a delivery preference or a routing rule for
notifications (labels type=notification) matches."""

from __future__ import annotations

import logging

from django.conf import settings
from django.dispatch import receiver

from apps.core.notify import notified

from . import dispatch, routing
from .errors import CommsError
from .models import DeliveryPreference
from .render import Message

log = logging.getLogger(__name__)


@receiver(notified, dispatch_uid="comms.deliver_notification")
def deliver_notification(sender, notification, **kwargs):
    user = notification.user
    destinations = []
    preference = DeliveryPreference.objects.filter(user=user, enabled=True, connector__enabled=True).select_related("connector").first()
    if preference is not None:
        destinations.append(routing.Destination(preference.connector, preference.recipient))
    route = routing.route({"type": "notification", "user": user.username}, notifications=True)
    try:
        destinations += routing.destinations(route.targets)
    except CommsError:  # a rule naming a deleted target must not break the approval or job that notified
        log.exception("comms: routing the notification for %s failed", user.username)
    if not destinations:
        return
    link = notification.link
    if link.startswith("/"):
        link = settings.CONSOLE_BASE_URL.rstrip("/") + link
    message = Message(title=notification.text, link=link, event="notification", data={"user": user.username})
    dispatch.queue(dispatch.create(destinations, message, origin="notification"))
