app_name = "mcp"
urlpatterns = []
