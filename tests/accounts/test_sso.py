"""Single sign-on against a real OpenID provider (node-oidc-provider) and the live console (docs/sso.md).

The console runs with OIDC_ONLY=1 (the password form only for the break-glass admin) and a one-hour
actor cache, so a role change it shows at once can only come from its own invalidation."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts.models import SsoIdentity
from apps.audit.models import AuditEvent

from ..support import processes
from ..support.oidc import OidcProvider, answer_provider, follow, sign_in, start_sign_in, submit_form

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
CLIENT_ID, CLIENT_SECRET = "console", "a-secret-the-console-and-provider-share"


class Sso:
    def __init__(self, provider: OidcProvider, console: str):
        self.provider, self.console = provider, console

    def browser(self) -> httpx.Client:
        return httpx.Client(timeout=30)

    def sign_in(self, login: str, **kwargs) -> tuple[httpx.Client, httpx.Response]:
        client = self.browser()
        return client, sign_in(client, self.console, login, **kwargs)


@pytest.fixture(scope="module")
def sso(django_db_setup, django_db_blocker, tmp_path_factory):
    console_port = processes.free_port()
    console_url = f"http://127.0.0.1:{console_port}"
    provider = OidcProvider(tmp_path_factory.mktemp("oidc"), console_url, CLIENT_ID, CLIENT_SECRET)
    try:
        with django_db_blocker.unblock():
            proc, url = processes.start_console(
                console_port, OIDC_ISSUER=provider.issuer, OIDC_CLIENT_ID=CLIENT_ID, OIDC_CLIENT_SECRET=CLIENT_SECRET,
                OIDC_ROLE_MAP="ops=operator,ops-admins=admin,ops-admins=approver", OIDC_ONLY="1", ACTOR_CACHE_SECONDS="3600",
            )  # fmt: skip
        try:
            yield Sso(provider, url)
        finally:
            proc.stop()
    finally:
        provider.stop()


def roles(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def linked(sso: Sso, sub: str):
    return SsoIdentity.objects.select_related("user").get(issuer=sso.provider.issuer, subject=sub).user


def test_first_sign_in_creates_a_user_linked_by_issuer_and_sub_with_the_mapped_roles(sso):
    sso.provider.set_account("alice", email="alice@example.com", preferred_username="alice", groups=["ops", "unmapped"])
    _, page = sso.sign_in("alice")
    assert page.status_code == 200 and page.url.path == "/", page.text[:500]
    user = linked(sso, "alice")
    assert user.username == "alice" and roles(user) == {"operator"} and not user.has_usable_password()
    change = AuditEvent.objects.get(operation="accounts.apply_sso_roles")
    assert (change.actor, change.target, change.outcome) == ("system", "alice", "ok")
    assert change.params["roles"] == ["operator"] and change.params["groups"] == ["ops", "unmapped"]
    assert AuditEvent.objects.filter(operation="accounts.login", outcome="ok", target="alice").count() == 1


def test_groups_changed_at_the_provider_change_roles_at_the_next_sign_in_and_at_once(sso):
    sso.provider.set_account("dora", preferred_username="dora", groups=["ops-admins"])
    admin_session, _ = sso.sign_in("dora")
    assert roles(linked(sso, "dora")) == {"admin", "approver"}
    assert admin_session.get(f"{sso.console}/accounts/users/").status_code == 200
    user = linked(sso, "dora")
    user.groups.add(Group.objects.create(name="sre"))  # a team the console gave: not the provider's to take

    sso.provider.set_account("dora", preferred_username="dora", groups=["ops"])
    sso.sign_in("dora")
    assert roles(linked(sso, "dora")) == {"operator", "sre"}
    # The older session's cached roles (one-hour cache) were dropped by the change itself.
    assert admin_session.get(f"{sso.console}/accounts/users/").status_code == 403
    changes = AuditEvent.objects.filter(operation="accounts.apply_sso_roles", target="dora").order_by("seq")
    assert [e.params["roles"] for e in changes] == [["admin", "approver"], ["operator"]]

    sso.sign_in("dora")  # same groups: nothing changes, nothing is recorded
    assert AuditEvent.objects.filter(operation="accounts.apply_sso_roles", target="dora").count() == 2


def test_same_email_or_username_at_the_provider_never_reaches_another_account(sso):
    sso.provider.set_account("bob", email="bob@example.com", preferred_username="bob", groups=["ops-admins"])
    sso.sign_in("bob")
    victim = linked(sso, "bob")
    local = User.objects.create_user("carol", email="carol@example.com", password="a-local-password-1")
    local.groups.add(Group.objects.get(name="admin"))

    # Another subject claiming bob's email and name, and one claiming the local carol's.
    sso.provider.set_account("mallory", email="bob@example.com", preferred_username="bob", groups=[])
    sso.provider.set_account("mallory2", email="carol@example.com", preferred_username="carol", groups=[])
    _, page = sso.sign_in("mallory")
    assert page.url.path == "/accounts/no-role/"
    sso.sign_in("mallory2")

    mallory, mallory2 = linked(sso, "mallory"), linked(sso, "mallory2")
    assert {mallory.pk, mallory2.pk}.isdisjoint({victim.pk, local.pk})
    assert (mallory.username, mallory2.username) == ("bob-2", "carol-2")
    assert roles(mallory) == roles(mallory2) == set() and roles(linked(sso, "bob")) == {"admin", "approver"}
    assert not SsoIdentity.objects.filter(user=local).exists()


def test_a_user_whose_groups_map_to_no_role_sees_the_no_role_page(sso):
    sso.provider.set_account("erin", preferred_username="erin", groups=["marketing"])
    _, page = sso.sign_in("erin")
    assert page.status_code == 403 and "You have no role in this console" in page.text and "erin" in page.text
    assert roles(linked(sso, "erin")) == set()
    assert not AuditEvent.objects.filter(operation="accounts.apply_sso_roles").exists()


def _swap_state(state: str):
    def rewrite(url: httpx.URL) -> httpx.URL:
        return url.copy_set_param("state", state) if url.path == "/accounts/sso/callback/" else url

    return rewrite


def test_a_callback_with_a_state_this_browser_never_sent_is_refused(sso):
    sso.provider.set_account("frank", groups=["ops"])
    client, page = sso.sign_in("frank", rewrite=_swap_state("forged-state"))
    assert page.status_code == 400 and "Single sign-on did not sign you in" in page.text
    assert client.get(f"{sso.console}/", follow_redirects=False).status_code == 302  # not signed in
    assert not SsoIdentity.objects.filter(subject="frank").exists()
    refusal = AuditEvent.objects.get(operation="accounts.login", outcome="denied")
    assert "state not found" in refusal.error


def test_a_code_delivered_with_another_sign_ins_state_fails_its_pkce_check(sso):
    """Two sign-ins started in one browser: the first one's code, delivered with the second's state,
    is redeemed with the second's PKCE verifier (and nonce) — the provider refuses to exchange it."""
    sso.provider.set_account("gina", groups=["ops"])
    client = sso.browser()
    first = client.get(f"{sso.console}/accounts/sso/start/")
    second = client.get(f"{sso.console}/accounts/sso/start/")
    second_state = httpx.URL(second.headers["location"]).params["state"]
    assert second_state != httpx.URL(first.headers["location"]).params["state"]
    page = answer_provider(client, follow(client, first), "gina", rewrite=_swap_state(second_state))
    assert page.status_code == 403 and "the provider did not accept the sign-in" in page.text
    assert client.get(f"{sso.console}/", follow_redirects=False).status_code == 302
    assert not SsoIdentity.objects.filter(subject="gina").exists()


@pytest.mark.parametrize(
    ("param", "status", "refusal"),
    [("nonce", 400, "JWT Nonce verification failed"), ("code_challenge", 403, "the provider did not accept the sign-in")],
)
def test_a_nonce_or_pkce_challenge_changed_on_the_way_to_the_provider_is_refused(sso, param, status, refusal):
    """The browser (or a man in the middle) alters the authorization request: the provider signs the
    altered nonce into the ID token, or binds the code to the altered challenge; the console refuses."""
    sso.provider.set_account("hugo", groups=["ops"])

    def tamper(url: httpx.URL) -> httpx.URL:
        return url.copy_set_param(param, "A" * 43) if url.path == "/auth" else url

    client, page = sso.sign_in("hugo", rewrite=tamper)
    assert page.status_code == status and refusal in page.text
    assert client.get(f"{sso.console}/", follow_redirects=False).status_code == 302
    assert not SsoIdentity.objects.filter(subject="hugo").exists()
    assert refusal in AuditEvent.objects.get(operation="accounts.login", outcome="denied").error


def test_the_callback_of_another_browser_is_refused(sso):
    """Login CSRF: a code and state obtained in the attacker's browser, opened in the victim's."""
    sso.provider.set_account("hank", groups=["ops"])
    callback = {}

    def capture(url: httpx.URL) -> httpx.URL:
        if url.path == "/accounts/sso/callback/":
            callback["url"] = url
            return url.copy_set_param("state", "held-back")  # the attacker keeps the real callback
        return url

    sso.sign_in("hank", rewrite=capture)
    victim = sso.browser()
    page = victim.get(callback["url"])
    assert page.status_code in (400, 403) and "Single sign-on did not sign you in" in page.text
    assert victim.get(f"{sso.console}/", follow_redirects=False).status_code == 302


def test_a_deactivated_user_cannot_sign_in_and_loses_its_session(sso):
    sso.provider.set_account("ivan", groups=["ops"])
    session, _ = sso.sign_in("ivan")
    assert session.get(f"{sso.console}/", follow_redirects=False).status_code == 200
    user = linked(sso, "ivan")
    User.objects.filter(pk=user.pk).update(is_active=False)

    _, page = sso.sign_in("ivan")
    assert page.status_code == 403 and f"{user.username} is deactivated" in page.text
    assert session.get(f"{sso.console}/", follow_redirects=False).status_code == 302
    refusal = AuditEvent.objects.get(operation="accounts.login", outcome="denied")
    assert refusal.error == f"single sign-on: {user.username} is deactivated"


def _csrf_post(client: httpx.Client, url: str) -> httpx.Response:
    client.get(url.rsplit("/accounts/", 1)[0] + "/")  # a page with a form sets the CSRF cookie
    return client.post(url, data={"csrfmiddlewaretoken": client.cookies["csrftoken"]})


def test_logout_ends_the_console_session_and_the_provider_session(sso):
    sso.provider.set_account("judy", groups=["ops"])
    client, _ = sso.sign_in("judy")
    response = _csrf_post(client, f"{sso.console}/accounts/logout/")
    assert response.is_redirect and response.headers["location"].startswith(f"{sso.provider.issuer}/session/end?")
    assert "id_token_hint=" in response.headers["location"]
    page = follow(client, response)
    page = submit_form(client, page, {"logout": "yes"})  # the provider asks before ending its session
    assert page.url == httpx.URL(f"{sso.console}/accounts/login/")
    assert client.get(f"{sso.console}/", follow_redirects=False).status_code == 302
    # The provider's session is over too: signing in again asks for the login once more.
    assert 'name="login"' in start_sign_in(client, sso.console).text
    assert AuditEvent.objects.filter(operation="accounts.logout", target=linked(sso, "judy").username).count() == 1


def test_without_logout_the_provider_session_would_sign_in_again_silently(sso):
    """The counterpart of the logout test: it shows what the provider does with a live session."""
    sso.provider.set_account("kim", groups=["ops"])
    client, _ = sso.sign_in("kim")
    client.cookies.delete("sessionid")  # the console forgets; the provider does not
    page = start_sign_in(client, sso.console)
    assert 'name="login"' not in page.text


def test_oidc_only_keeps_the_password_form_for_the_local_break_glass_admin(sso):
    login_url = f"{sso.console}/accounts/login/"
    client = sso.browser()
    page = client.get(login_url)
    assert "Log in with single sign-on" in page.text and 'name="password"' not in page.text
    assert 'name="password"' in client.get(login_url, params={"local": "1"}).text

    admin = User.objects.create_user("breakglass", password="a-local-password-1")
    admin.groups.add(Group.objects.get(name="admin"))
    operator = User.objects.create_user("localop", password="a-local-password-1")
    operator.groups.add(Group.objects.get(name="operator"))
    for user, signed_in in ((admin, True), (operator, False)):
        client = sso.browser()
        client.get(login_url, params={"local": "1"})
        response = client.post(login_url, data={"username": user.username, "password": "a-local-password-1",
                                                "csrfmiddlewaretoken": client.cookies["csrftoken"]})  # fmt: skip
        assert (response.status_code == 302) is signed_in, user.username
    assert AuditEvent.objects.get(operation="accounts.login", target="breakglass").outcome == "ok"
