from django.urls import path

from . import editor_views, views

app_name = "infrastructure"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("deployments/", views.deployment_list, name="deployments"),
    path("deployments/<int:pk>/", views.deployment_detail, name="deployment"),
    path("deployments/<int:pk>/abort/", views.deployment_action, {"action": "abort"}, name="abort"),
    path("deployments/<int:pk>/promote/", views.deployment_action, {"action": "promote"}, name="promote"),
    path("environments/new/", editor_views.environment_edit, name="environment_new"),
    path("environments/<slug:env>/", editor_views.environment_edit, name="environment_edit"),
    path("runbooks/", views.runbook_list, name="runbooks"),
    path("runbooks/new/", editor_views.runbook_edit, name="runbook_new"),
    path("runbooks/<slug:name>/edit/", editor_views.runbook_edit, name="runbook_edit"),
    path("runbooks/<slug:name>/", views.runbook_run, name="runbook"),
    path("build/", views.build, name="build"),
    path("new-service/", views.service_edit, name="service_new"),
    path("<slug:env>/containers/<str:container>/logs/", views.container_logs, name="logs"),
    path("<slug:env>/<slug:name>/", views.service_detail, name="service"),
    path("<slug:env>/<slug:name>/edit/", views.service_edit, name="service_edit"),
    path("<slug:env>/<slug:name>/deploy/", views.deploy, name="deploy"),
    path("<slug:env>/<slug:name>/rollback/", views.service_action, {"action": "rollback"}, name="rollback"),
    path("<slug:env>/<slug:name>/restart/", views.service_action, {"action": "restart"}, name="restart"),
]
