"""The gateway: roles, rate limits, validation, approvals, audit — through invoke()
and through the web form, as a user would call it."""

import secrets
from types import SimpleNamespace

import pytest

from apps.approvals.models import ApprovalRequest
from apps.audit.models import AuditEvent
from apps.core.errors import InvalidInput, PermissionDenied, RateLimited
from apps.core.gateway import invoke
from apps.core.models import Job

READ, WRITE, RISKY = "core.health", "core.echo_job", "core.purge_jobs"
PARAMS = {READ: {"include_workers": False}, WRITE: {"steps": 1, "step_seconds": 0}, RISKY: {"older_than_days": 30}}

# role -> what each risk class gives: ok (ran), queued (job), pending (approval), denied
EXPECTED = {
    "viewer": {READ: "ok", WRITE: "denied", RISKY: "denied"},
    "operator": {READ: "ok", WRITE: "queued", RISKY: "pending"},
    "approver": {READ: "ok", WRITE: "denied", RISKY: "denied"},
    "auditor": {READ: "denied", WRITE: "denied", RISKY: "denied"},
    "admin": {READ: "ok", WRITE: "queued", RISKY: "pending"},
}


@pytest.mark.parametrize("role", EXPECTED)
@pytest.mark.parametrize("op", [READ, WRITE, RISKY])
def test_each_role_is_allowed_or_denied_per_risk_class(role, op, make_user, actor_of):
    actor = actor_of(make_user(role))
    expected = EXPECTED[role][op]
    if expected == "denied":
        with pytest.raises(PermissionDenied) as exc:
            invoke(op, actor, PARAMS[op])
        assert op in exc.value.message and role in exc.value.message
    else:
        assert invoke(op, actor, PARAMS[op]).status == expected
    event = AuditEvent.objects.get(operation=op)
    assert (event.outcome, event.actor, event.channel) == ({"queued": "ok"}.get(expected, expected), actor.name, "web")


def test_anonymous_is_denied_and_audited(db):
    from apps.accounts.actors import Actor

    with pytest.raises(PermissionDenied, match="Authentication required"):
        invoke(READ, Actor.for_user(None), {})
    assert AuditEvent.objects.get().outcome == "denied"


def test_invalid_input_names_each_field_changes_nothing_and_is_audited(make_user, actor_of):
    actor = actor_of(make_user("operator"))
    with pytest.raises(InvalidInput) as exc:
        invoke(WRITE, actor, {"steps": 0, "message": "x" * 500, "surprise": 1})
    assert set(exc.value.errors) == {"steps", "message"}
    assert "greater than or equal to 1" in exc.value.errors["steps"]
    assert not Job.objects.exists()
    event = AuditEvent.objects.get()
    assert event.outcome == "failed" and "steps" in event.error


def test_form_shows_pydantic_errors_next_to_fields(client_as):
    client = client_as("operator")
    response = client.post("/operations/core.echo_job/", {"message": "hi", "steps": "500", "step_seconds": "0"})
    assert response.status_code == 422
    form = response.context["form"]
    assert "less than or equal to 100" in form.errors["steps"][0]
    assert not Job.objects.exists()


@pytest.fixture
def still_clock(monkeypatch):
    """A rate window cannot end between two calls of a test (a real clock could cross one under load)."""
    from apps.core import ratelimit

    monkeypatch.setattr(ratelimit, "clock", lambda: 1_700_000_000.0)


def test_rate_limit_windows_end_when_the_clock_says(make_user, actor_of, settings, monkeypatch):
    from apps.core import ratelimit

    settings.OPS_RATE_LIMITS = {"read": "1/m", "write": "1/m", "risky": "1/m"}
    now = [1_700_000_000.0]
    monkeypatch.setattr(ratelimit, "clock", lambda: now[0])
    actor = actor_of(make_user("viewer"))
    invoke(READ, actor, {})
    with pytest.raises(RateLimited, match=r"try again in \d+ s"):
        invoke(READ, actor, {})
    now[0] += 60  # the next window
    assert invoke(READ, actor, {}).status == "ok"


def test_rate_limit_returns_429_and_is_audited(client_as, settings, still_clock):
    settings.OPS_RATE_LIMITS = {"read": "3/m", "write": "3/m", "risky": "3/m"}
    client = client_as("viewer")
    codes = [client.post("/operations/core.health/", {}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    events = list(AuditEvent.objects.filter(operation=READ).order_by("seq"))
    assert [e.outcome for e in events] == ["ok", "ok", "ok", "denied"]
    assert "Rate limit" in events[-1].error


def test_rate_limit_counts_per_actor(make_user, actor_of, settings, still_clock):
    settings.OPS_RATE_LIMITS = {"read": "2/m", "write": "2/m", "risky": "2/m"}
    first, second = actor_of(make_user("viewer")), actor_of(make_user("viewer"))
    for _ in range(2):
        invoke(READ, first, {})
    with pytest.raises(RateLimited):
        invoke(READ, first, {})
    assert invoke(READ, second, {}).status == "ok"


def test_risky_call_goes_pending_with_exact_params(make_user, actor_of):
    actor = actor_of(make_user("operator"))
    outcome = invoke(RISKY, actor, {"older_than_days": 7}, reason="tidy up")
    assert outcome.status == "pending"
    request = ApprovalRequest.objects.get(pk=outcome.approval.pk)
    assert (request.params, request.reason, request.status) == ({"older_than_days": 7}, "tidy up", "pending")
    assert AuditEvent.objects.get(operation=RISKY).approval_id == str(request.pk)
    assert not Job.objects.exists()


def test_read_result_matches_output_model(make_user, actor_of):
    outcome = invoke(READ, actor_of(make_user("viewer")), {"include_workers": False})
    assert outcome.result.database == "ok"
    assert outcome.result.broker == "ok"
    assert outcome.result.queue_depth >= 0


def test_secret_params_never_reach_the_audit_log(make_user, actor_of):
    from pydantic import BaseModel, SecretStr

    from apps.core.redact import redact_model

    class Connect(BaseModel):
        url: str
        password: SecretStr
        api_key: str
        headers: dict

    params = Connect(url="https://x", password="hunter2", api_key="AKIA123", headers={"Authorization": "Bearer abc", "X": "1"})
    shown = redact_model(params)
    assert shown == {"url": "https://x", "password": "[redacted]", "api_key": "[redacted]",
                     "headers": {"Authorization": "[redacted]", "X": "1"}}  # fmt: skip


@pytest.mark.parametrize("caller", ["token", "session user"])
def test_a_read_call_makes_at_most_three_round_trips(caller, make_user, make_token, monkeypatch):
    """A cheap read, the caller's actor resolved inside the count (a token's from the process's cache, as
    an MCP call's; a session user's roles from it, once Django's auth middleware has loaded the user):
    one Redis command (the rate limit) and the audit append; the watched-feed check from memory.
    The caches' clocks are held: a slow machine must not expire them between the two calls."""
    from apps.accounts import actors
    from apps.core import live
    from tests.support.roundtrips import counting

    monkeypatch.setattr(actors, "clock", lambda: 1000.0)
    monkeypatch.setattr(live, "clock", lambda: 1000.0)
    user = make_user("viewer")
    _, raw = make_token(user)
    resolve = (lambda: actors.actor_for_token(raw)) if caller == "token" else (lambda: actors.Actor.for_user(user))
    invoke("accounts.whoami", resolve())  # warm: per-process caches (token, roles, watched feed)
    with counting() as trips:
        outcome = invoke("accounts.whoami", resolve())
    assert outcome.result.roles == ["viewer"] and (outcome.result.token is not None) == (caller == "token")
    assert trips.redis == 1, trips.redis  # the rate limit, one script
    assert trips.total <= 3, (trips.sql, trips.redis)  # in a transaction the audit append is 2: head under the lock, INSERT


def test_the_gateways_rate_limit_counts_in_django_ratelimits_own_keys(monkeypatch):
    """One script instead of django-ratelimit's three commands, with its semantics: the same key for the
    same group, value, rate and window, so django-ratelimit itself reads the count the gateway made."""
    import django_ratelimit.core
    from django_ratelimit.core import get_usage

    from apps.core import ratelimit

    now = 1_700_000_000.0 + secrets.randbelow(10**6)  # a window of this run only
    monkeypatch.setattr(ratelimit, "clock", lambda: now)
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now))
    for n in range(1, 4):
        usage = ratelimit.hit("ops.read", "user:rl-probe", "3/m")
        assert (usage.count, usage.should_limit) == (n, False)
    theirs = get_usage(None, group="ops.read", key=lambda _g, _r: "user:rl-probe", rate="3/m")
    assert (theirs["count"], theirs["should_limit"], theirs["time_left"]) == (3, False, usage.time_left)
    assert ratelimit.hit("ops.read", "user:rl-probe", "3/m").should_limit


def test_the_rate_limit_survives_a_lost_script_and_a_killed_connection(monkeypatch, settings):
    """The script runs on a connection of the process's own (redis-py's client wrappers cost as much CPU again
    as the round trip): a server that does not know the script gets it whole, and a connection broken under it
    (a Redis restart) is replaced at once, as the client's one retry did; the count goes on from where it was."""
    import redis

    from apps.core import ratelimit

    now = 1_700_000_000.0 + secrets.randbelow(10**6)  # a window of this run only
    monkeypatch.setattr(ratelimit, "clock", lambda: now)
    assert ratelimit.hit("ops.read", "user:rl-lost", "5/m").count == 1
    script, idle = ratelimit._script(settings.RATELIMIT_USE_CACHE)
    monkeypatch.setattr(script, "sha", "0" * 40)  # a digest the server does not know (the shared server's scripts stay)
    assert ratelimit.hit("ops.read", "user:rl-lost", "5/m").count == 2
    held = idle.take()  # the connection the next call takes, given back
    held.send_command("CLIENT", "ID")
    admin = redis.Redis.from_url(settings.REDIS_URL)
    assert admin.client_kill_filter(_id=held.read_response()) == 1  # that connection only
    idle.give(held)
    assert ratelimit.hit("ops.read", "user:rl-lost", "5/m").count == 3


def test_admit_is_only_for_long_operations_without_approval():
    """A short operation admits in its own function; an approved job starts long after its call, so a risky one cannot."""
    from apps.core.operations import operation

    with pytest.raises(TypeError, match="admit is for a long operation"):
        operation("testing.admit_short", admit=lambda ctx, params: params)
    with pytest.raises(TypeError, match="admit is for a long operation"):
        operation("testing.admit_risky", risk="risky", long=True, planner=lambda ctx, params: {}, admit=lambda ctx, params: params)
