"""The error pages (400, 403, 404, 500) and the page of a console error: one template, a
heading for the kind of failure and what a person can do about it."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string

# status -> (heading, what to do)
WHAT_TO_DO = {
    400: ("Request not understood", "Reload the page and send the form again."),
    403: ("Not allowed", "Your role does not include this. Ask an admin for the role, or go back to what you can do."),
    404: ("Not found", "The link may be old or the object deleted. Search for it, or start from Home."),
    409: ("Conflict", "Someone changed this meanwhile. Reload the page and try again."),
    429: ("Too many requests", "Wait a minute, then try again."),
    500: ("Something broke", "Try again in a minute; if it keeps failing, give an admin the reference above."),
    503: ("Unavailable", "A service the console needs does not answer. Try again in a minute."),
}
OTHER = ("That did not work", "Go back, correct what the message says, and try again.")


def error_response(request, message: str, status: int):
    heading, hint = WHAT_TO_DO.get(status, OTHER)
    context = {"error": message, "heading": heading, "hint": hint, "status": status}
    return render(request, "core/error.html", context, status=status)


def not_found(request, exception=None):
    return error_response(request, "There is nothing at this address.", 404)


def database_unavailable() -> HttpResponse:
    """503 without the request: its context processors would look up the user in the database."""
    return HttpResponse(render_to_string("core/database_unavailable.html"), status=503)


def server_error(request):
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):  # e.g. raised by a middleware
        return database_unavailable()
    ref = getattr(request, "request_id", "")
    return error_response(request, f"Something went wrong on our side. Reference: {ref}", 500)


def forbidden(request, exception=None):
    return error_response(request, "Your role does not allow this page.", 403)


def bad_request(request, exception=None):
    return error_response(request, "The request was not understood.", 400)
