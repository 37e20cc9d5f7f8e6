from django.urls import path

from . import views

app_name = "mcp"
urlpatterns = [path("", views.agents, name="agents"), path("tools/<slug:app>/", views.agent_tools, name="tools")]
