app_name = "infrastructure"
urlpatterns = []
