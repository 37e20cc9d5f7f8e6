from django.urls import path

from . import views

app_name = "security"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("scans/", views.scans, name="scans"),
    path("scans/new/", views.new_scan, name="new_scan"),
    path("scans/<uuid:pk>/", views.scan_detail, name="scan"),
    path("scans/<uuid:pk>/state/", views.scan_state, name="scan_state"),
    path("findings/", views.findings, name="findings"),
    path("findings/export.sarif", views.export_sarif, name="export_sarif"),
    path("findings/export.csv", views.export_csv, name="export_csv"),
    path("findings/<int:pk>/", views.finding_detail, name="finding"),
    path("findings/<int:pk>/triage/", views.triage, name="triage"),
    path("roots/", views.roots, name="roots"),
    path("roots/<slug:name>/remove/", views.remove_root, name="remove_root"),
]
