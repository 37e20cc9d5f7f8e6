"""Single sign-on's parts that need no provider: off by default, the role map, the ID token checks the
library leaves out, discovery's issuer check, the break-glass rule and who may set SSO roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from apps.accounts import sso
from apps.accounts.models import SsoIdentity
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.gateway import invoke

from ..support.processes import ROOT


def test_sso_is_off_without_oidc_issuer(client):
    assert settings.OIDC_ISSUER == "" and not settings.SSO_ENABLED
    assert settings.AUTHENTICATION_BACKENDS == ["django.contrib.auth.backends.ModelBackend"]
    for path in ("/accounts/sso/start/", "/accounts/sso/callback/", "/accounts/no-role/"):
        assert client.get(path).status_code == 404, path
    with pytest.raises(NoReverseMatch):
        reverse("accounts:sso_start")
    page = client.get("/accounts/login/")
    assert "single sign-on" not in page.content.decode() and 'name="password"' in page.content.decode()


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        ({"OIDC_CLIENT_ID": ""}, "OIDC_CLIENT_ID and OIDC_CLIENT_SECRET are needed"),
        ({"OIDC_ROLE_MAP": "ops=operatr"}, "OIDC_ROLE_MAP: 'ops=operatr'"),
        ({}, None),
    ],
)
def test_a_half_or_wrong_sso_configuration_stops_the_start(env, refusal):
    full = {**os.environ, "OIDC_ISSUER": "https://idp.example", "OIDC_CLIENT_ID": "console", "OIDC_CLIENT_SECRET": "s",
            "OIDC_ROLE_MAP": "ops=operator", **env}  # fmt: skip
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)
    if refusal is None:  # the provider is not contacted at start-up: an unreachable one does not stop it
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode != 0 and refusal in done.stderr


def test_role_map_allows_a_group_several_roles_and_refuses_unknown_roles():
    assert sso.role_map(" ops=operator, ops-admins=admin,ops-admins=approver ,") == {
        "ops": frozenset({"operator"}),
        "ops-admins": frozenset({"admin", "approver"}),
    }
    assert sso.role_map("cn=ops=viewer") == {"cn=ops": frozenset({"viewer"})}  # the last "=" splits
    for wrong in ("ops=superuser", "ops", "=admin"):
        with pytest.raises(ImproperlyConfigured):
            sso.role_map(wrong)


def test_groups_claim_is_named_by_setting_and_may_be_a_single_string(settings):
    settings.OIDC_GROUPS_CLAIM = "roles"
    settings.OIDC_ROLE_MAP = "ops=operator"
    assert sso.groups_of({"roles": "ops", "groups": ["ops-admins"]}) == ["ops"]
    assert sso.roles_for(sso.groups_of({"roles": ["ops", "other"]})) == {"operator"}
    assert sso.roles_for(sso.groups_of({})) == set()


ISSUER = "https://idp.example"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"iss": "https://evil.example"}, "issued by"),
        ({"aud": "another-client"}, "not meant for this console"),
        ({"aud": ["console", "another-client"]}, "another party"),
        ({"aud": ["console", "another-client"], "azp": "another-client"}, "another party"),
        ({"sub": ""}, "without a subject"),
    ],
)
def test_an_id_token_for_another_issuer_client_or_subject_is_refused(settings, change, refusal):
    settings.OIDC_ISSUER, settings.OIDC_RP_CLIENT_ID = ISSUER, "console"
    sso.check_issuer_and_audience({"iss": ISSUER, "aud": "console", "sub": "s1"})  # the good one passes
    sso.check_issuer_and_audience({"iss": ISSUER, "aud": ["console", "x"], "azp": "console", "sub": "s1"})
    with pytest.raises(sso.SsoRefused, match=refusal):
        sso.check_issuer_and_audience({"iss": ISSUER, "aud": "console", "sub": "s1", **change})


def test_claims_come_from_the_id_token_and_userinfo_about_the_same_subject():
    id_token = {"iss": ISSUER, "sub": "s1", "groups": ["from-id-token"], "email": "old@example.com"}
    assert sso.merged_claims(id_token, {"sub": "s1", "email": "new@example.com"}) == {**id_token, "email": "new@example.com"}
    assert sso.merged_claims(id_token, {"sub": "s1", "groups": ["from-userinfo"]})["groups"] == ["from-userinfo"]
    assert sso.merged_claims(id_token, {"sub": "s1", "iss": "https://evil.example"})["iss"] == ISSUER
    with pytest.raises(sso.SsoRefused, match="another subject"):
        sso.merged_claims(id_token, {"sub": "s2"})


@pytest.fixture
def discovery_server():
    """A real HTTP server answering the discovery path with a document naming `issuer`."""
    document = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", document
    server.shutdown()
    server.server_close()
    sso.forget_provider()


def test_discovery_is_read_once_and_must_name_the_issuer_it_was_fetched_for(settings, discovery_server):
    url, document = discovery_server
    settings.OIDC_ISSUER = url
    document.update(issuer="https://someone-else.example", authorization_endpoint=f"{url}/auth")
    sso.forget_provider()
    with pytest.raises(sso.ProviderUnavailable, match="names issuer"):
        sso.provider()
    document["issuer"] = url  # a failed read is not kept: the next use reads again
    assert sso.sso_setting("OIDC_OP_AUTHORIZATION_ENDPOINT") == f"{url}/auth"
    document["authorization_endpoint"] = f"{url}/changed"
    assert sso.sso_setting("OIDC_OP_AUTHORIZATION_ENDPOINT") == f"{url}/auth"  # kept for the process


def test_oidc_only_lets_only_a_local_admin_use_a_password(settings, make_user, db):
    settings.AUTHENTICATION_BACKENDS = ["apps.accounts.sso.LocalPasswordBackend"]
    admin, operator, linked_admin = make_user("admin"), make_user("operator"), make_user("admin")
    SsoIdentity.objects.create(user=linked_admin, issuer=ISSUER, subject="s1")
    settings.OIDC_ONLY = False
    assert all(authenticate(username=u.username, password=u.raw_password) == u for u in (admin, operator, linked_admin))
    settings.OIDC_ONLY = True
    assert authenticate(username=admin.username, password=admin.raw_password) == admin
    assert authenticate(username=operator.username, password=operator.raw_password) is None
    assert authenticate(username=linked_admin.username, password=linked_admin.raw_password) is None


def test_only_the_console_itself_sets_roles_from_the_provider(make_user, actor_of):
    admin, target = make_user("admin"), make_user("viewer")
    with pytest.raises(PermissionDenied, match="come from the identity provider"):
        invoke("accounts.apply_sso_roles", actor_of(admin), {"user_id": target.pk, "username": target.username, "roles": ["admin"]})
    assert set(target.groups.values_list("name", flat=True)) == {"viewer"}
    assert AuditEvent.objects.get(operation="accounts.apply_sso_roles").outcome == "denied"
