from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path

from . import oauth_views, views

if settings.SSO_ENABLED:
    from . import sso_views

    LogoutView = sso_views.SsoLogoutView  # also signs out at the provider
else:
    LogoutView = auth_views.LogoutView

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_edit, name="user_new"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("tokens/", views.token_list, name="tokens"),
    path("tokens/new/", views.token_create, name="token_create"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("agents/", oauth_views.agent_list, name="agents"),
    path("agents/<int:pk>/revoke/", oauth_views.agent_revoke, name="agent_revoke"),
]

if settings.SSO_ENABLED:  # docs/sso.md; without OIDC_ISSUER none of these exist
    urlpatterns += [
        path("sso/start/", sso_views.SsoStartView.as_view(), name="sso_start"),
        path("sso/callback/", sso_views.SsoCallbackView.as_view(), name="sso_callback"),
        path("no-role/", sso_views.no_role, name="no_role"),
    ]
