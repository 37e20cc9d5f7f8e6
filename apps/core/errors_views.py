from django.shortcuts import render


def not_found(request, exception=None):
    return render(request, "core/error.html", {"error": "There is nothing at this address."}, status=404)


def server_error(request):
    ref = getattr(request, "request_id", "")
    return render(request, "core/error.html", {"error": f"Something went wrong on our side. Reference: {ref}"}, status=500)


def forbidden(request, exception=None):
    return render(request, "core/error.html", {"error": "Your role does not allow this page."}, status=403)


def bad_request(request, exception=None):
    return render(request, "core/error.html", {"error": "The request was not understood."}, status=400)
