from django.urls import path

from .views import browse, dashboards, sources

app_name = "monitoring"
urlpatterns = [
    path("", browse.overview, name="overview"),
    path("query/", browse.query, name="query"),
    path("targets/", browse.targets, name="targets"),
    path("alerts/", browse.alerts, name="alerts"),
    path("silences/", browse.silences, name="silences"),
    path("silences/<str:silence_id>/expire/", browse.silence_expire, name="silence_expire"),
    path("rules/", browse.rules, name="rules"),
    path("dashboards/", dashboards.dashboard_list, name="dashboards"),
    path("dashboards/new/", dashboards.dashboard_edit, name="dashboard_new"),
    path("dashboards/<slug:slug>/", dashboards.dashboard_view, name="dashboard"),
    path("dashboards/<slug:slug>/edit/", dashboards.dashboard_edit, name="dashboard_edit"),
    path("dashboards/<slug:slug>/delete/", dashboards.dashboard_delete, name="dashboard_delete"),
    path("sources/", sources.source_list, name="sources"),
    path("sources/new/", sources.source_edit, name="source_new"),
    path("sources/<int:pk>/", sources.source_edit, name="source_edit"),
    path("sources/<int:pk>/delete/", sources.source_delete, name="source_delete"),
]
