"""The authorization server's endpoints, under DOT's url namespace (its metadata view reverses these names).
Mounted at the root (opsconsole/urls.py): the RFC 8414 metadata must be at /.well-known/oauth-authorization-server.
Only what the authorization code flow needs, and RFC 7009 revocation: no implicit, password, device, introspection
or RFC 7592 endpoints. The token and revocation endpoints are the console's own views over DOT's oauthlib server,
so that every exchange and revocation goes through the gateway (audited)."""

from django.urls import path
from oauth2_provider import views as dot

from . import oauth_views

app_name = "oauth2_provider"
urlpatterns = [
    path(".well-known/oauth-authorization-server", dot.OAuthServerMetadataView.as_view(), name="oauth-server-metadata"),
    path("oauth/authorize/", oauth_views.ConsentView.as_view(), name="authorize"),
    path("oauth/token/", oauth_views.token, name="token"),
    path("oauth/revoke/", oauth_views.revoke_token, name="revoke-token"),
    path("oauth/register/", oauth_views.register, name="dcr-register"),
]
