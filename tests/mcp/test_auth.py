"""Who may reach /mcp: a usable API token, from an allowed Host and Origin."""

import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.audit.models import AuditEvent
from tests.support import processes

from .conftest import mcp_client, post_raw

pytestmark = pytest.mark.django_db(transaction=True)

PING = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
VERSION = {"MCP-Protocol-Version": "2025-11-25"}


def assert_refused(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.json()["error"] == "invalid_token"


def test_no_token_or_a_wrong_one_is_401(mcp_url, make_user, make_token):
    _, raw = make_token(make_user("operator"))
    assert_refused(post_raw(mcp_url, PING, **VERSION))
    assert_refused(post_raw(mcp_url, PING, Authorization=f"Bearer {raw[:-2]}xx", **VERSION))
    assert_refused(post_raw(mcp_url, PING, Authorization=f"Basic {raw}", **VERSION))
    assert post_raw(mcp_url, PING, Authorization=f"Bearer {raw}", **VERSION).status_code == 200


def test_revoked_and_expired_tokens_are_401(mcp_url, make_user, make_token):
    user = make_user("operator")
    revoked, revoked_raw = make_token(user)
    expired, expired_raw = make_token(user, expires_at=timezone.now() + timedelta(hours=1))
    for raw in (revoked_raw, expired_raw):
        assert post_raw(mcp_url, PING, Authorization=f"Bearer {raw}", **VERSION).status_code == 200
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired.expires_at = timezone.now() - timedelta(seconds=1)
    expired.save()
    # The server process trusts what it verified for ACTOR_CACHE_SECONDS (1 s): a change made here
    # reaches it within that bound (tests/accounts pins the bound with an injected clock).
    deadline = time.monotonic() + 30
    for raw in (revoked_raw, expired_raw):
        while (response := post_raw(mcp_url, PING, Authorization=f"Bearer {raw}", **VERSION)).status_code == 200:
            assert time.monotonic() < deadline, "a revoked or expired token still worked after 30 s"
            time.sleep(0.2)
        assert_refused(response)


def test_refused_tokens_of_real_users_are_audited_without_the_secret(mcp_url, make_user, make_token):
    user = make_user("operator")
    token, raw = make_token(user)
    wrong = f"{raw[:-4]}abcd"
    assert_refused(post_raw(mcp_url, PING, Authorization=f"Bearer {wrong}", **VERSION))
    token.revoked_at = timezone.now()
    token.save()
    for _ in range(12):  # a flood is audited at most 10 times a minute per token
        assert_refused(post_raw(mcp_url, PING, Authorization=f"Bearer {raw}", **VERSION))
    assert_refused(post_raw(mcp_url, PING, Authorization="Bearer opc_000000000000_nosuchtoken", **VERSION))
    events = list(AuditEvent.objects.filter(operation="accounts.token_refused").order_by("seq"))
    assert [(e.actor, e.channel, e.outcome, e.target) for e in events[:1]] == [(user.username, "mcp", "denied", str(token))]
    assert [e.error for e in events] == ["wrong secret or inactive user"] + ["token revoked"] * 9
    secret = raw.split("_", 2)[2]  # opc_<lookup>_<secret>; the secret may itself contain "_" (token_urlsafe)
    assert raw not in str([e.__dict__ for e in events]) and secret not in str([e.__dict__ for e in events])


def test_a_deactivated_user_is_401(mcp_url, make_user, make_token):
    user = make_user("operator")
    _, raw = make_token(user)
    user.is_active = False
    user.save()
    assert_refused(post_raw(mcp_url, PING, Authorization=f"Bearer {raw}", **VERSION))


def test_foreign_origin_and_host_are_refused(mcp_url, make_user, make_token):
    """DNS-rebinding protection: a page on another site cannot drive a local console."""
    _, raw = make_token(make_user("operator"))
    auth = {"Authorization": f"Bearer {raw}", **VERSION}
    assert post_raw(mcp_url, PING, Origin="http://evil.example", **auth).status_code == 403
    assert post_raw(mcp_url, PING, Host="evil.example", **auth).status_code == 421
    assert post_raw(mcp_url, PING, Origin=mcp_url.removesuffix("/mcp"), **auth).status_code == 200


@pytest.fixture(scope="module")
def strict_console(django_db_setup, django_db_blocker):
    """A second web process whose read operations are limited to 2 a day per token (a day-long window:
    the test's calls cannot straddle a window's end, as they could a minute's on a loaded machine)."""
    with django_db_blocker.unblock():
        proc, url = processes.start_console(OPS_RATE_LIMIT_READ="2/d")
    yield url
    proc.stop()


async def test_rate_limit_is_a_tool_error_and_audited(strict_console, make_user, make_token):
    user = await sync_to_async(make_user)("viewer")
    token, raw = await sync_to_async(make_token)(user)
    _, other_raw = await sync_to_async(make_token)(user)
    async with mcp_client(strict_console + "/mcp", raw) as agent:
        results = [await agent.call_tool("approvals_list_mine", {}) for _ in range(3)]
    assert [r.is_error for r in results] == [False, False, True]
    assert "Rate limit of 2/d read operations reached" in results[2].content[0].text
    async with mcp_client(strict_console + "/mcp", other_raw) as agent:  # the limit counts per token
        assert not (await agent.call_tool("approvals_list_mine", {})).is_error

    events = await sync_to_async(list)(AuditEvent.objects.filter(operation="approvals.list_mine", token_id=token.pk).order_by("seq"))
    assert [(e.channel, e.outcome) for e in events] == [("mcp", "ok"), ("mcp", "ok"), ("mcp", "denied")]
    assert "Rate limit" in events[2].error and events[2].actor == user.username
