from django.urls import path

from . import views

app_name = "core"
urlpatterns = [
    path("operations/", views.operation_list, name="operations"),
    path("operations/<str:name>/", views.operation_form, name="operation"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job"),
    path("jobs/<uuid:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("health/", views.health_page, name="health"),
    path("search/", views.search, name="search"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications_read"),
]
