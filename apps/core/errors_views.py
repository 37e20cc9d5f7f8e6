from django.shortcuts import render


def not_found(request, exception=None):
    return render(request, "core/error.html", {"error": "There is nothing at this address."}, status=404)


def server_error(request):
    ref = getattr(request, "request_id", "")
    return render(request, "core/error.html", {"error": f"Something went wrong on our side. Reference: {ref}"}, status=500)
