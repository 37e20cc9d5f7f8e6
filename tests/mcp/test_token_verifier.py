"""The SDK's token check on every MCP request: a token this process verified lately is answered
from memory, with the same access token (built once per cached actor), never its secret."""

import asyncio

from django.contrib.auth.models import Group

from apps.accounts import actors
from apps.mcp.auth import ApiTokenVerifier


def verify(raw: str):
    return asyncio.run(ApiTokenVerifier().verify_token(raw))


def test_a_cached_token_gives_the_same_access_token_until_its_actor_changes(make_user, make_token):
    user = make_user("operator")
    _, raw = make_token(user)
    actor = actors.actor_for_token(raw)  # verified once (what the first request does in the thread pool)
    first = verify(raw)
    assert first is verify(raw)
    assert first.actor is actor and first.scopes == sorted(actor.roles) == ["operator"]
    assert raw.rsplit("_", 1)[1] not in first.model_dump_json()

    user.groups.add(Group.objects.get(name="viewer"))  # a role change forgets the cached actors
    assert actors.actor_for_token(raw, cached_only=True) is None
    changed = actors.actor_for_token(raw)
    again = verify(raw)
    assert again is not first and again.actor is changed


def test_a_cached_token_is_verified_without_a_thread_hop(make_user, make_token, monkeypatch):
    """The call's one thread-pool hop is the gateway's: a token this process verified lately is checked on
    the event loop; only a token it does not know goes to the pool."""
    from apps.mcp import auth

    hops = []

    def in_thread(func):
        async def hop(*args):
            hops.append(func.__name__)  # what the pool would run; not run here (the test's data is on its own thread)

        return hop

    monkeypatch.setattr(auth, "in_thread", in_thread)
    monkeypatch.setattr(actors, "clock", lambda: 1000.0)  # a slow machine must not expire the cache between the calls
    _, raw = make_token(make_user("operator"))
    assert verify(raw) is None and hops == ["_verify"]  # not known yet
    actors.actor_for_token(raw)  # what that hop does
    assert verify(raw).actor.roles == {"operator"} and verify(raw).actor.roles == {"operator"}
    assert hops == ["_verify"]
