from django.urls import path

from . import setup_views, views

app_name = "comms"
urlpatterns = [
    path("", views.incidents, name="incidents"),
    path("incidents/<int:pk>/", views.incident, name="incident"),
    path("incidents/<int:pk>/<str:action>/", views.incident_action, name="incident_action"),
    path("deliveries/", views.deliveries, name="deliveries"),
    path("deliveries/<uuid:pk>/resend/", views.resend, name="resend"),
    path("preview/", views.preview, name="preview"),
    path("preference/", views.preference, name="preference"),
    path("alertmanager/", views.alertmanager_webhook, name="alertmanager"),
    path("setup/", setup_views.setup, name="setup"),
    path("setup/<str:section>/", setup_views.setup, name="setup_section"),
    path("setup/<str:section>/<int:pk>/", setup_views.setup, name="setup_edit"),
    path("setup/<str:section>/<int:pk>/delete/", setup_views.setup_delete, name="setup_delete"),
]
