"""The middleware chain runs in one mode under ASGI: each async-capable middleware stacked
under a sync-only one would run in the event loop and send every sync hook of its own
(process_request, process_view, process_response) to the request's thread and back."""

import logging

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings


def test_under_asgi_the_chain_leaves_the_event_loop_once(caplog):
    with override_settings(DEBUG=True), caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()  # loads the chain as uvicorn runs it (is_async=True)
    adapted = [r.getMessage() for r in caplog.records if "handler adapted for" in r.getMessage()]
    # The innermost middleware is sync-only: Django adapts the async core to it once, and every
    # middleware above then runs synchronously in the request's thread.
    assert adapted == [f"Asynchronous handler adapted for middleware {settings.MIDDLEWARE[-1]}."]
