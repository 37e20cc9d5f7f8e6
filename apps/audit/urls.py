from django.urls import path, re_path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.browse, name="browse"),
    path("<int:seq>/", views.detail, name="detail"),
    re_path(r"^export\.(?P<fmt>csv|json)$", views.export, name="export"),
    path("export.zip", views.export_bundle, name="export_bundle"),
    path("public-key.pem", views.public_key, name="public_key"),
]
