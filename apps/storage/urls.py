from django.urls import path

from . import connection_views, views

app_name = "storage"
urlpatterns = [
    path("", views.index, name="index"),
    path("download/", views.download, name="download"),
    path("compliance/", views.compliance, name="compliance"),
    path("connections/new/", connection_views.connection_edit, name="connection_new"),
    path("c/<slug:connection>/", views.buckets, name="buckets"),
    path("c/<slug:connection>/edit/", connection_views.connection_edit, name="connection_edit"),
    path("c/<slug:connection>/test/", connection_views.connection_test, name="connection_test"),
    path("c/<slug:connection>/b/<str:bucket>/", views.browse, name="browse"),
    path("c/<slug:connection>/b/<str:bucket>/object/", views.object_detail, name="object"),
    path("c/<slug:connection>/b/<str:bucket>/delete/", views.delete, name="delete"),
    path("c/<slug:connection>/b/<str:bucket>/upload/", views.upload_page, name="upload"),
    path("c/<slug:connection>/b/<str:bucket>/upload/ticket/", views.upload_ticket, name="upload_ticket"),
    path("c/<slug:connection>/b/<str:bucket>/upload/direct/<slug:step>/", views.upload_direct, name="upload_direct"),
]
