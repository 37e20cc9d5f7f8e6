"""Tell a user something happened (an approval decided, a job done).

Stored for the UI and pushed live; other apps (comms) may also deliver it by
connecting to the `notified` signal."""

from django.dispatch import Signal

from .live import publish_template
from .models import Notification

notified = Signal()  # sender=Notification, notification=...


def notify(user, text: str, link: str = "") -> Notification | None:
    if user is None:
        return None
    note = Notification.objects.create(user=user, text=text[:300], link=link[:300])
    unread = Notification.objects.filter(user=user, read_at__isnull=True).count()
    publish_template(f"user.{user.pk}", "core/_notifications_live.html", {"note": note, "unread": unread})
    notified.send(sender=Notification, notification=note)
    return note
