"""Work an OAuth agent starts — a queued job, an approval request — runs later as that agent, not as its user
(docs/oauth.md, "Work an agent leaves behind"): with no more than the scopes it had and the user's authorization
of it still gives, not at all once the agent is revoked, and audited in its name. The job runs here on the
worker's code path (gateway.run_job), as in tests/support/approving.py."""

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, revoke_access_token

from apps.accounts import actors
from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke, run_job
from apps.core.models import Job, JobLogLine
from tests.support.oauth import Flow, issue_oauth_token

ECHO = {"steps": 2, "step_seconds": 0, "message": "ran"}


@pytest.fixture(autouse=True)
def registration_limit(settings):
    settings.OAUTH_REGISTRATION_RATE_LIMIT = "1000/m"


def agent_of(user, scopes, **kwargs):
    """An agent the user authorized with `scopes` (its refresh token too, unless refresh=False): (its access token row,
    its actor at /mcp)."""
    kwargs.setdefault("refresh", True)
    token, raw = issue_oauth_token(user, scopes, name="Claude at home", **kwargs)
    return token, actors.actor_for_token(raw)


def credential_of(token) -> str:
    """How work names the authorization `token` belongs to: its client and its token family."""
    return f"oauth:{token.application_id}:{RefreshToken.objects.get(access_token=token).token_family}"


def queue_echo(actor) -> Job:
    outcome = invoke("core.echo_job", actor, ECHO, channel="mcp")
    assert outcome.status == "queued"
    return outcome.job


def run(job: Job) -> Job:
    run_job(str(job.pk))
    job.refresh_from_db()
    return job


def run_event(job: Job) -> AuditEvent:
    return AuditEvent.objects.get(channel="worker", request_id=job.request_id, operation=job.operation)


def test_an_agents_job_runs_in_the_agents_name(make_user):
    user = make_user("operator")
    token, agent = agent_of(user, ["operator"])
    job = queue_echo(agent)
    assert (job.credential, job.scopes) == (credential_of(token), ["operator"])
    assert run(job).status == Job.SUCCEEDED, job.error
    event = run_event(job)
    assert (event.outcome, event.actor, event.token) == ("ok", user.username, f"Claude at home (OAuth agent #{token.application_id})")


def test_an_agents_job_runs_with_what_its_authorization_grants_now_not_with_its_users_roles(client_as):
    """The agent refreshes its token asking for viewer only (the same authorization, narrowed) while its job waits:
    the job starts with viewer only, so its write is refused — not run with the user's operator role."""
    started = Flow(client_as("operator", "viewer"), scope="viewer operator")
    body = started.token(started.code()).json()
    job = queue_echo(actors.actor_for_token(body["access_token"]))
    narrowed = started.refresh(body["refresh_token"], scope="viewer")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "viewer", narrowed.content
    job = run(job)
    assert job.status == Job.FAILED and "may not run core.echo_job" in job.error
    assert not JobLogLine.objects.filter(job=job).exists()  # nothing ran
    event = run_event(job)
    agent_id = Application.objects.get(client_id=started.client_id).pk
    assert (event.outcome, event.token) == ("denied", f"Test agent (OAuth agent #{agent_id})")


# Revoked around the agents page (accounts.revoke_agent cancels the waiting job at once: test_revoking_an_agent_ends_...).
REVOKED = {
    "its client deleted": lambda user, token, admin: Application.objects.filter(pk=token.application_id).delete(),
    "its tokens revoked as DOT revokes them (RFC 7009)": lambda user, token, admin: revoke_access_token(token),
}


@pytest.mark.parametrize("revoke", REVOKED)
def test_an_agents_queued_job_does_not_run_once_the_agent_is_revoked(revoke, make_user, actor_of):
    user = make_user("operator")
    token, agent = agent_of(user, ["operator"], refresh=True)
    job = queue_echo(agent)
    REVOKED[revoke](user, token, actor_of(make_user("admin")))
    job = run(job)
    client = "a deleted client" if revoke == "its client deleted" else "Claude at home"
    assert job.status == Job.FAILED
    assert job.error.startswith(f"The OAuth agent {client} (#{token.application_id}) that requested this job was revoked")
    assert not JobLogLine.objects.filter(job=job).exists()  # nothing ran
    event = run_event(job)
    assert (event.outcome, event.actor, event.error) == ("denied", user.username, job.error)
    assert event.token == f"{client} (OAuth agent #{token.application_id})"


def test_an_agent_whose_access_token_expired_but_can_still_refresh_is_not_revoked(make_user):
    """Access tokens live an hour; the authorization lives in the refresh token: an agent's job waiting longer
    than its access token still runs while the agent could refresh — and not once that refresh token is revoked."""
    user = make_user("operator")
    token, agent = agent_of(user, ["operator"], refresh=True)
    first, second = queue_echo(agent), queue_echo(agent)
    type(token).objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(minutes=5))
    assert run(first).status == Job.SUCCEEDED, first.error
    RefreshToken.objects.get(access_token=token).revoke()
    assert run(second).status == Job.FAILED and "was revoked" in second.error


@pytest.mark.parametrize("when", ["before the vote", "after the vote"])
def test_an_agents_approved_request_does_not_run_once_the_agent_is_revoked_on_the_agents_page(when, make_user, actor_of):
    user, approver = make_user("operator"), actor_of(make_user("approver"))
    token, agent = agent_of(user, ["operator"])
    old = Job.objects.create(operation="core.echo_job", params={}, channel="web", status=Job.SUCCEEDED,
                             created_at=timezone.now() - timedelta(days=90))  # fmt: skip
    outcome = invoke("core.purge_jobs", agent, {"older_than_days": 30}, channel="mcp")
    approval = outcome.approval
    assert outcome.status == "pending" and approval.credential == credential_of(token)
    revoke = lambda: invoke("accounts.revoke_agent", actor_of(user), {"application_id": token.application_id})  # noqa: E731
    if when == "before the vote":
        revoke()
        with pytest.raises(approvals.VoteRefused, match="already withdrawn"):
            approvals.vote(approval.pk, approver, "approve")
        assert not Job.objects.filter(approval_id=approval.pk).exists()
    else:
        approvals.vote(approval.pk, approver, "approve")
        revoke()
        job = run(Job.objects.get(approval_id=approval.pk))
        assert job.status == Job.CANCELLED and "that requested it was revoked" in job.error
        assert not AuditEvent.objects.filter(channel="worker", operation="core.purge_jobs").exists()  # never started
    assert Job.objects.filter(pk=old.pk).exists()  # nothing purged
    approval.refresh_from_db()
    assert approval.executed_at is None


def test_an_agents_approved_request_runs_as_the_agent_while_it_is_authorized(make_user, actor_of):
    user, approver = make_user("operator", "admin"), actor_of(make_user("approver"))
    token, agent = agent_of(user, ["operator"])
    approval = invoke("core.purge_jobs", agent, {"older_than_days": 30}, channel="mcp").approval
    approvals.vote(approval.pk, approver, "approve")
    job = run(Job.objects.get(approval_id=approval.pk))
    assert job.status == Job.SUCCEEDED, job.error
    assert (job.credential, job.scopes) == (approval.credential, ["operator"])  # not the user's admin role
    assert run_event(job).token == f"Claude at home (OAuth agent #{token.application_id})"


def test_an_api_tokens_job_runs_through_the_token_and_not_once_it_is_revoked(make_user, make_token, actor_of):
    user = make_user("operator", "admin")
    token, raw = make_token(user, ["operator"])
    actor = actors.actor_for_token(raw)
    done, waiting = queue_echo(actor), queue_echo(actor)
    assert (done.credential, done.scopes) == (f"api:{token.pk}", ["operator"])
    assert run(done).status == Job.SUCCEEDED, done.error
    event = run_event(done)
    assert (event.token_id, event.token) == (token.pk, str(token))
    invoke("accounts.revoke_token", actor_of(user), {"id": token.pk})
    assert run(waiting).status == Job.FAILED
    assert waiting.error == f"The API token {token} that requested this job was revoked or has expired. Nothing ran."
    assert not JobLogLine.objects.filter(job=waiting).exists()
    assert (run_event(waiting).outcome, run_event(waiting).token_id) == ("denied", token.pk)


def test_a_persons_job_runs_with_their_roles_now(make_user, actor_of):
    user = make_user("operator")
    job = queue_echo(actor_of(user))
    assert (job.credential, job.scopes) == ("", [])
    assert run(job).status == Job.SUCCEEDED, job.error
    assert run_event(job).token == ""


@pytest.mark.parametrize("credential", ["api:999999", "oauth:7:not-a-token-family", "oauth:x"])
def test_a_stored_reference_to_a_credential_that_is_gone_is_refused(credential, make_user):
    user = make_user("operator")
    job = Job.objects.create(operation="core.echo_job", params=ECHO, channel="mcp", requested_by=user, credential=credential,
                             scopes=["operator"])  # fmt: skip
    assert run(job).status == Job.FAILED and f"{credential} that requested this job no longer exists" in job.error


def test_revoking_an_agent_on_the_agents_page_ends_the_work_it_left_waiting(client, make_user, make_token, actor_of):
    """Its queued job is cancelled and its pending request withdrawn, for that user only: authorizing the same
    client again does not revive them. What the user queued themselves, another agent's work and another user's
    work with the same client go on. The counts are on the page and in the revocation's audit event."""
    user, other = make_user("operator"), make_user("operator")
    token, agent = agent_of(user, ["operator"])
    job, approval = queue_echo(agent), invoke("core.purge_jobs", agent, {"older_than_days": 30}, channel="mcp").approval
    _, others_agent = agent_of(other, ["operator"], application=token.application)
    second_agent = actors.actor_for_token(issue_oauth_token(user, ["operator"], name="Another agent")[1])
    untouched = [queue_echo(actor_of(user)), queue_echo(others_agent), queue_echo(second_agent)]
    running = queue_echo(agent)
    Job.objects.filter(pk=running.pk).update(status=Job.RUNNING, worker="elsewhere:1", heartbeat_at=timezone.now())

    client.force_login(user)
    page = client.post(f"/accounts/agents/{token.application_id}/revoke/", follow=True).content.decode()
    assert "1 queued job(s) cancelled, 1 approval request(s) withdrawn" in page
    job.refresh_from_db()
    approval.refresh_from_db()
    revoked_by = f"The OAuth agent Claude at home (#{token.application_id}) that requested it was revoked by {user.username}."
    assert (job.status, job.error) == (Job.CANCELLED, revoked_by)
    assert (approval.status, approval.executed_at) == (approval.WITHDRAWN, None)
    assert approval.requested_by.notifications.filter(text__contains=f"#{approval.pk} (core.purge_jobs) was withdrawn").exists()
    assert [Job.objects.get(pk=j.pk).status for j in untouched] == [Job.QUEUED] * 3
    assert Job.objects.get(pk=running.pk).status == Job.RUNNING  # started while the agent counted: it goes on
    event = AuditEvent.objects.get(operation="accounts.revoke_agent")
    assert (event.outcome, event.actor, event.channel) == ("ok", user.username, "web")
    assert event.params == {"application_id": token.application_id, "user_id": None, "tokens": 1,
                            "jobs_cancelled": 1, "requests_withdrawn": 1}  # fmt: skip

    issue_oauth_token(user, ["operator"], application=token.application)  # the same client, authorized again
    assert run(job).status == Job.CANCELLED and not JobLogLine.objects.filter(job=job).exists()
    with pytest.raises(approvals.VoteRefused, match="already withdrawn"):
        approvals.vote(approval.pk, actor_of(make_user("approver")), "approve")
    assert not Job.objects.filter(approval_id=approval.pk).exists()


# An authorization ended around the console's operations: its work is refused at its start, whatever came after.
ENDED = {
    "its tokens revoked as DOT revokes them (admin, RFC 7009)": lambda token: revoke_access_token(token),
    "its refresh token expired": lambda token: AccessToken.objects.filter(pk=token.pk).update(
        expires=timezone.now() - timedelta(days=31)  # REFRESH_TOKEN_EXPIRE_SECONDS after its access token's expiry
    ),
    "its tokens deleted": lambda token: (RefreshToken.objects.filter(access_token=token).delete(), token.delete()),
}


@pytest.mark.parametrize("end", ENDED)
def test_authorizing_the_same_client_again_does_not_revive_the_work_of_an_ended_authorization(end, make_user, actor_of):
    """The work names the authorization it was asked under (its token family), not the client: a new consent to the
    same client is another authorization, under which the old job and the old request are refused at their start
    — while the new authorization's own work runs."""
    user, approver = make_user("operator"), actor_of(make_user("approver"))
    token, agent = agent_of(user, ["operator"])
    job, approval = queue_echo(agent), invoke("core.purge_jobs", agent, {"older_than_days": 30}, channel="mcp").approval
    ENDED[end](token)
    again, new_agent = agent_of(user, ["operator"], application=token.application)  # the same client, authorized again
    assert credential_of(again) != job.credential

    job = run(job)
    assert job.status == Job.FAILED and job.error.startswith(f"The OAuth agent Claude at home (#{token.application_id}) that requested")
    assert "was revoked" in job.error and not JobLogLine.objects.filter(job=job).exists()
    assert run_event(job).outcome == "denied"
    approvals.vote(approval.pk, approver, "approve")  # (ended around the console: nothing withdrew it)
    approved = run(Job.objects.get(approval_id=approval.pk))
    assert approved.status == Job.FAILED and "was revoked" in approved.error
    assert not AuditEvent.objects.filter(channel="worker", operation="core.purge_jobs", outcome="ok").exists()

    new_job = queue_echo(new_agent)
    assert run(new_job).status == Job.SUCCEEDED, new_job.error
    assert new_job.credential == credential_of(again)


def test_a_reference_queued_before_authorizations_were_named_still_resolves_by_its_client(make_user):
    """Work queued before this console named the token family keeps "oauth:<client>": it runs while the user holds
    a live token of that client — any authorization of it — and is refused once none is left."""
    user = make_user("operator")
    token, _ = agent_of(user, ["operator"])

    def old_job():
        return Job.objects.create(operation="core.echo_job", params=ECHO, channel="mcp", requested_by=user,
                                  credential=f"oauth:{token.application_id}", scopes=["operator"])  # fmt: skip

    first, second = old_job(), old_job()
    assert run(first).status == Job.SUCCEEDED, first.error
    assert run_event(first).token == f"Claude at home (OAuth agent #{token.application_id})"
    revoke_access_token(token)
    assert run(second).status == Job.FAILED and "was revoked" in second.error
