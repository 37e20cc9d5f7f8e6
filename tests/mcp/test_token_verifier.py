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
    assert raw.split("_", 2)[2] not in first.model_dump_json()  # opc_<lookup>_<secret>: the secret may hold "_" itself

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


def test_requests_of_a_token_whose_cached_actor_ran_out_share_one_read(make_user, make_token, monkeypatch):
    """At 16 clients every request arriving while a token is read again made its own read (a thread hop and
    two queries each, several a second): they now wait for the one in flight, and a later request reads anew."""
    from apps.mcp import auth

    _, raw = make_token(make_user("operator"))
    actor = actors.actor_for_token(raw)
    hops = []

    def in_thread(func):
        async def hop(token):
            hops.append(func.__name__)
            await release.wait()  # the read in flight, while the other requests arrive
            return auth._access_token(actor)  # what the read gives (not run here: the test's data is on its own thread)

        return hop

    monkeypatch.setattr(auth, "in_thread", in_thread)
    monkeypatch.setattr(actors, "_tokens", {})  # the cached actor ran out

    async def requests():
        nonlocal release
        release = asyncio.Event()
        verifier = ApiTokenVerifier()
        waiting = [asyncio.ensure_future(verifier.verify_token(raw)) for _ in range(16)]
        while not hops:
            await asyncio.sleep(0)
        waiting[0].cancel()  # a request that goes away does not take the others' read with it
        for _ in range(10):
            await asyncio.sleep(0)
        release.set()
        answers = await asyncio.gather(*waiting[1:])
        assert len(hops) == 1 and all(answer.actor is actor for answer in answers)
        assert not verifier._reads  # done: the next request that misses the cache reads again
        await verifier.verify_token(raw)
        assert len(hops) == 2

    release = None
    asyncio.run(requests())
