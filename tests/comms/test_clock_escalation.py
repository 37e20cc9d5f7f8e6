"""The clock's escalation goes through the gateway: each due incident is one call of
comms.escalate_due_incident as the system (audited, role-checked), which re-checks
under the incident's lock that it is still due — so a second tick, an acknowledgement
that landed first, or a failing incident never escalates twice, early, or stops the others.
A due incident whose policy has no next level (shortened or deleted since it was scheduled)
has its schedule ended once, by the first tick, and is never due again; one whose page fails
(a target gone) keeps its level and is retried after a backoff, not on every tick.
A driven clock (the tick's time, in the past), real PostgreSQL, the loopback peers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.actors import Actor
from apps.audit.models import AuditEvent
from apps.comms import incidents
from apps.comms.errors import CommsError
from apps.comms.incidents import AlertIn
from apps.comms.models import Delivery, EscalationPolicy, Incident, RoutingRule, Target
from apps.core.errors import InvalidInput, PermissionDenied
from apps.core.gateway import invoke

OP = "comms.escalate_due_incident"
LEVELS = [
    {"after_minutes": 0, "targets": ["ops-slack"]},
    {"after_minutes": 5, "targets": ["oncall-sms"]},
    {"after_minutes": 10, "targets": ["oncall-email"]},
]


@pytest.fixture
def t0():
    return timezone.now() - timedelta(hours=1)  # the tick's time is never ahead of the console's clock


@pytest.fixture
def opened(connectors, t0):
    """An open incident at level 1 (paged when it opened), level 2 due at t0 + 5 min."""
    policy = EscalationPolicy.objects.create(name="api-oncall", levels=LEVELS)
    RoutingRule.objects.create(name="api", services=["api"], targets=[], escalation_policy=policy)
    data = AlertIn(type="HighErrorRate", severity="critical", title="5xx above 2%", service="api")
    incident = incidents.receive_alert(data, "t", now=t0).incident
    assert (incident.escalation_level, incident.next_escalation_at) == (1, t0 + timedelta(minutes=5))
    return incident


def escalations(incident: Incident) -> int:
    return incident.timeline.filter(kind="escalation").count()


def test_a_due_incident_escalates_once_and_the_gateway_audits_it(opened, t0, twilio, send_queued):
    due = t0 + timedelta(minutes=5)
    assert [i.pk for i in incidents.escalate_due(now=due)] == [opened.pk]
    event = AuditEvent.objects.get(operation=OP)
    assert (event.outcome, event.channel, event.actor, event.target) == ("ok", "system", "system", f"incident {opened.pk}")
    assert (event.params["incident_id"], event.params["level"]) == (opened.pk, 1)
    assert not AuditEvent.objects.filter(operation="comms.escalate_incident").exists()  # no hand-written event beside it
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at) == (2, due + timedelta(minutes=10))

    # A second tick at the same time finds nothing due: no second escalation, no second call.
    assert incidents.escalate_due(now=due) == []
    assert AuditEvent.objects.filter(operation=OP).count() == 1
    # A tick that had found it due at level 1 before the first one committed: its call changes nothing and says so.
    replay = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": due}, "system").result
    assert (replay.escalated, replay.level, replay.why) == (False, 2, "it is at level 2, not 1")
    opened.refresh_from_db()
    assert (opened.escalation_level, escalations(opened)) == (2, 1)
    send_queued()
    assert Delivery.objects.filter(incident=opened, kind="sms").count() == 1 and len(twilio.calls("Messages.json")) == 1
    outcomes = list(AuditEvent.objects.filter(operation=OP).order_by("seq").values_list("outcome", flat=True))
    assert outcomes == ["ok", "ok"]  # the replay is an audited call that changed nothing


def test_an_incident_acknowledged_before_the_tick_is_not_escalated(opened, t0, make_user, actor_of):
    operator = actor_of(make_user("operator"))
    invoke("comms.ack_incident", operator, {"incident_id": opened.pk})
    assert incidents.escalate_due(now=t0 + timedelta(minutes=5)) == []
    assert not AuditEvent.objects.filter(operation=OP).exists()
    # A tick that selected it just before the acknowledgement committed: under the lock it is no longer due.
    late = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": t0 + timedelta(minutes=5)}, "system").result
    assert (late.escalated, late.why) == (False, "it is acknowledged")
    opened.refresh_from_db()
    assert (opened.status, opened.escalation_level, escalations(opened)) == ("acknowledged", 1, 0)


def test_nothing_escalates_before_it_is_due(opened, t0):
    early = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": t0 + timedelta(minutes=4)}, "system").result
    assert (early.escalated, early.why) == (False, "its next level is not due")
    # Nor by a tick's time ahead of the console's clock: refused as invalid input, audited, nothing changed.
    with pytest.raises(InvalidInput, match="ahead of the console's clock"):
        invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": timezone.now() + timedelta(hours=1)}, "system")
    refused = AuditEvent.objects.filter(operation=OP).order_by("seq").last()
    assert (refused.outcome, refused.channel) == ("failed", "system") and "ahead of the console's clock" in refused.error
    opened.refresh_from_db()
    assert (opened.escalation_level, escalations(opened)) == (1, 0)


def test_a_viewer_may_not_run_the_clocks_escalation(opened, t0, make_user, actor_of):
    viewer = actor_of(make_user("viewer"))
    with pytest.raises(PermissionDenied):
        invoke(OP, viewer, {"incident_id": opened.pk, "level": 1, "at": t0 + timedelta(minutes=5)})
    assert AuditEvent.objects.get(operation=OP).outcome == "denied"
    opened.refresh_from_db()
    assert opened.escalation_level == 1


def failures(incident: Incident) -> list[str]:
    return list(incident.timeline.filter(kind="escalation", text__startswith="Escalation to level").values_list("text", flat=True))


def at(moment) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def test_one_failing_incident_does_not_stop_the_others(opened, t0, send_queued):
    data = AlertIn(type="DbDown", severity="critical", title="db down", service="db", policy="api-oncall")
    other = incidents.receive_alert(data, "t", now=t0).incident
    assert other.pk > opened.pk and other.next_escalation_at == t0 + timedelta(minutes=5)
    # The first one's level 2 pages a target that is gone (a row written around the form): its page fails and is
    # backed off, in an ok call; the tick goes on to the next.
    broken = EscalationPolicy.objects.create(name="broken", levels=[LEVELS[0], {"after_minutes": 5, "targets": ["gone-pager"]}])
    Incident.objects.filter(pk=opened.pk).update(policy=broken)
    due = t0 + timedelta(minutes=5)
    assert [i.pk for i in incidents.escalate_due(now=due)] == [other.pk]
    first, second = AuditEvent.objects.filter(operation=OP).order_by("seq")
    assert (first.outcome, first.target, first.error, second.outcome, second.target) == (
        "ok", f"incident {opened.pk}", "", "ok", f"incident {other.pk}"
    )  # fmt: skip
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at) == (1, due + timedelta(minutes=5))
    assert failures(opened) == [
        f"Escalation to level 2 failed: No target named gone-pager; see the Comms setup page for the configured targets. "
        f"— retrying at {at(due + timedelta(minutes=5))}"
    ]
    assert Incident.objects.get(pk=other.pk).escalation_level == 2


def test_a_page_that_fails_is_retried_after_the_backoff_not_every_tick(opened, t0, connectors, slack, send_queued):
    """The next level's target was deleted behind the delete guard's back (old data, a race): the first attempt
    keeps the level (the level it saved before the page failed is rolled back), moves the schedule by
    COMMS_ESCALATION_RETRY_MINUTES and says why; ticks before then do not call for it; after it, it tries again."""
    EscalationPolicy.objects.create(name="db-oncall", levels=[LEVELS[0], {"after_minutes": 5, "targets": ["oncall-email"]}])
    data = AlertIn(type="DbDown", severity="critical", title="db down", service="db", policy="db-oncall")
    other = incidents.receive_alert(data, "t", now=t0 + timedelta(minutes=1)).incident
    sms = Target.objects.get(name="oncall-sms")
    Target.objects.filter(pk=sms.pk).delete()  # not through comms.delete_target, which would refuse
    send_queued()
    slack.reset()

    due = t0 + timedelta(minutes=5)
    first = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": due}, "system").result
    retry = due + timedelta(minutes=5)
    gone = "No target named oncall-sms; see the Comms setup page for the configured targets."
    why = f"escalation to level 2 failed: {gone} — retrying at {at(retry)}"
    assert (first.escalated, first.level, first.why) == (False, 1, why)
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at) == (1, retry)
    assert failures(opened) == [why[:1].upper() + why[1:]]
    assert escalations(opened) == 1  # no "Escalated to level 2" entry: that was rolled back with the level
    assert AuditEvent.objects.get(operation=OP).outcome == "ok"
    send_queued()
    told = [c["json"]["text"] for c in slack.calls("chat.postMessage")]  # level 1 (ops-slack) hears the page failed
    assert len(told) == 1 and f"Escalation to level 2 failed: incident #{opened.pk}" in told[0]

    # Ticks before the backoff: `other` escalates on its own schedule, `opened` is not called for.
    assert [i.pk for i in incidents.escalate_due(now=due + timedelta(minutes=1))] == [other.pk]
    assert incidents.escalate_due(now=retry - timedelta(seconds=15)) == []
    assert AuditEvent.objects.filter(operation=OP, target=f"incident {opened.pk}").count() == 1
    assert len(failures(opened)) == 1

    # After it: tried again (still failing for the same reason: backed off again, no new entry); once the target is
    # back, it pages.
    assert incidents.escalate_due(now=retry) == []
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at, len(failures(opened))) == (1, retry + timedelta(minutes=5), 1)
    Target.objects.create(name="oncall-sms", connector=connectors["sms"], recipient="+15550001234")
    assert [i.pk for i in incidents.escalate_due(now=retry + timedelta(minutes=5))] == [opened.pk]
    opened.refresh_from_db()
    assert opened.escalation_level == 2
    outcomes = AuditEvent.objects.filter(operation=OP, target=f"incident {opened.pk}").values_list("outcome", "error")
    assert list(outcomes) == [("ok", "")] * 3


def told_failed(slack) -> list[str]:
    """What Slack (ops-slack, level 1) was told about failed escalations."""
    return [c["json"]["text"] for c in slack.calls("chat.postMessage") if " failed: incident #" in c["json"]["text"]]


def test_a_failing_page_tells_the_paged_once_per_reason_not_at_every_retry(opened, t0, slack, smtp, send_queued):
    """A lasting fault must not page the on-call person at every retry: the people paged so far hear of a level's
    failure once (one timeline entry), again only when its reason changes; a retry failing as before is rescheduled
    and audited, nothing more. After a page succeeds, the next failure is news again, even with the same error text."""
    Target.objects.filter(name="oncall-sms").delete()  # behind the delete guard's back: level 2 cannot be paged
    send_queued()
    slack.reset()

    def tick(moment, escalated=()):
        assert [i.pk for i in incidents.escalate_due(now=moment)] == list(escalated)
        send_queued()
        opened.refresh_from_db()

    due = t0 + timedelta(minutes=5)
    gone = "Escalation to level 2 failed: No target named oncall-sms; see the Comms setup page for the configured targets."
    tick(due)
    assert (opened.escalation_level, opened.next_escalation_at) == (1, due + timedelta(minutes=5))
    assert failures(opened) == [f"{gone} — retrying at {at(due + timedelta(minutes=5))}"]
    assert len(told_failed(slack)) == 1

    # The same failure at the retry: rescheduled, audited, and nobody told again; the call says so.
    retry = due + timedelta(minutes=5)
    again = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": retry}, "system").result
    send_queued()
    opened.refresh_from_db()
    assert again.why == f"e{gone[1:]} — retrying at {at(retry + timedelta(minutes=5))} (as before: nobody told again)"
    assert (opened.escalation_level, opened.next_escalation_at) == (1, retry + timedelta(minutes=5))
    assert (len(failures(opened)), len(told_failed(slack))) == (1, 1)
    tick(retry + timedelta(minutes=5))
    assert (opened.next_escalation_at, len(failures(opened)), len(told_failed(slack))) == (retry + timedelta(minutes=10), 1, 1)

    # A different reason (level 2 rewritten without targets: an internal error) is news: told, one more entry.
    EscalationPolicy.objects.filter(name="api-oncall").update(levels=[LEVELS[0], {"after_minutes": 5}, LEVELS[2]])
    tick(retry + timedelta(minutes=10))
    internal = f"Escalation to level 2 failed: internal error: KeyError — retrying at {at(retry + timedelta(minutes=15))}"
    assert failures(opened)[1:] == [internal]
    assert len(told_failed(slack)) == 2 and "internal error: KeyError" in told_failed(slack)[1]
    tick(retry + timedelta(minutes=15))
    assert (len(failures(opened)), len(told_failed(slack))) == (2, 2)

    # Level 2 pages; level 3 then fails with the very same error text: after a success it is news again, told to
    # everyone paged so far (ops-slack and level 2's oncall-email).
    EscalationPolicy.objects.filter(name="api-oncall").update(
        levels=[LEVELS[0], {"after_minutes": 5, "targets": ["oncall-email"]}, {"after_minutes": 10}]
    )
    paged = retry + timedelta(minutes=20)
    tick(paged, escalated=[opened.pk])
    assert (opened.escalation_level, opened.next_escalation_at) == (2, paged + timedelta(minutes=10))
    smtp.reset()
    tick(paged + timedelta(minutes=10))
    assert opened.escalation_level == 2
    assert failures(opened)[2:] == [
        f"Escalation to level 3 failed: internal error: KeyError — retrying at {at(paged + timedelta(minutes=15))}"
    ]
    assert len(told_failed(slack)) == 3 and len(smtp.messages) == 1
    tick(paged + timedelta(minutes=15))
    assert (len(failures(opened)), len(told_failed(slack)), len(smtp.messages)) == (3, 3, 1)
    outcomes = AuditEvent.objects.filter(operation=OP).values_list("outcome", flat=True)
    assert list(outcomes) == ["ok"] * 8  # every retry, silent or not, is one audited call


def test_an_internal_error_while_paging_is_backed_off_without_its_text(opened, t0):
    """A level written around the form without targets: escalate() fails with a KeyError. The clock backs off as
    for any failed page, naming the error's kind only (an exception's text may carry anything)."""
    EscalationPolicy.objects.filter(name="api-oncall").update(levels=[LEVELS[0], {"after_minutes": 5}])
    due = t0 + timedelta(minutes=5)
    assert incidents.escalate_due(now=due) == []
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at) == (1, due + timedelta(minutes=5))
    assert failures(opened) == [f"Escalation to level 2 failed: internal error: KeyError — retrying at {at(due + timedelta(minutes=5))}"]
    assert AuditEvent.objects.get(operation=OP).outcome == "ok"
    assert incidents.escalate_due(now=due + timedelta(minutes=4)) == []
    assert AuditEvent.objects.filter(operation=OP).count() == 1


def stops(incident: Incident) -> list[str]:
    return list(incident.timeline.filter(kind="escalation", text__startswith="Escalation stopped").values_list("text", flat=True))


def test_a_policy_shortened_below_an_open_incidents_level_ends_its_schedule_once(
    opened, t0, make_user, actor_of, slack, twilio, smtp, send_queued
):
    """The first tick ends the schedule (one timeline entry, one ok audit event, the people paged told); the next
    ticks do not call for it; the other incidents keep escalating, and one at its last level is not due again."""
    data = AlertIn(type="DbDown", severity="critical", title="db down", service="db", policy="db-oncall")
    EscalationPolicy.objects.create(name="db-oncall", levels=LEVELS)
    other = incidents.receive_alert(data, "t", now=t0).incident
    # api-oncall lost its levels 2 and 3 after `opened` was scheduled (a row as a console before the fix left it).
    EscalationPolicy.objects.filter(name="api-oncall").update(levels=LEVELS[:1])
    send_queued()
    slack.reset()

    assert [i.pk for i in incidents.escalate_due(now=t0 + timedelta(minutes=5))] == [other.pk]
    opened.refresh_from_db()
    assert (opened.status, opened.escalation_level, opened.next_escalation_at) == ("open", 1, None)
    assert stops(opened) == ["Escalation stopped at level 1: policy api-oncall has no level 2"]
    assert escalations(opened) == 1  # that entry, and no page
    event = AuditEvent.objects.get(operation=OP, target=f"incident {opened.pk}")
    assert (event.outcome, event.error) == ("ok", "")
    send_queued()
    told = [c["json"]["text"] for c in slack.calls("chat.postMessage")]  # level 1 (ops-slack) hears it stopped
    assert len(told) == 1 and f"Escalation stopped (level 1): incident #{opened.pk}" in told[0]
    assert len(twilio.calls("Messages.json")) == 1  # `other` paged level 2, `opened` nobody new

    # The next ticks: `other` goes on to its last level, then has no next escalation time; `opened` is never called.
    assert [i.pk for i in incidents.escalate_due(now=t0 + timedelta(minutes=15))] == [other.pk]
    other.refresh_from_db()
    assert (other.escalation_level, other.next_escalation_at) == (3, None)
    assert incidents.escalate_due(now=t0 + timedelta(minutes=30)) == []
    assert AuditEvent.objects.filter(operation=OP, target=f"incident {opened.pk}").count() == 1
    assert list(AuditEvent.objects.filter(operation=OP).values_list("outcome", flat=True)) == ["ok", "ok", "ok"]
    opened.refresh_from_db()
    assert (opened.next_escalation_at, stops(opened)) == (None, ["Escalation stopped at level 1: policy api-oncall has no level 2"])

    # A person asking for the impossible still hears so.
    with pytest.raises(CommsError, match="already at the last level"):
        invoke("comms.escalate_incident", actor_of(make_user("operator")), {"incident_id": opened.pk})
    assert AuditEvent.objects.get(operation="comms.escalate_incident").outcome == "failed"


def test_a_deleted_policy_ends_a_due_schedule_once(opened, t0):
    EscalationPolicy.objects.filter(name="api-oncall").delete()  # the incident's policy goes to null
    assert incidents.escalate_due(now=t0 + timedelta(minutes=5)) == []
    opened.refresh_from_db()
    assert (opened.policy, opened.escalation_level, opened.next_escalation_at) == (None, 1, None)
    assert stops(opened) == ["Escalation stopped at level 1: the incident has no escalation policy (any more)"]
    replay = invoke(OP, Actor.system(), {"incident_id": opened.pk, "level": 1, "at": t0 + timedelta(minutes=5)}, "system").result
    assert (replay.escalated, replay.why) == (False, "its next level is not due")
    assert incidents.escalate_due(now=t0 + timedelta(minutes=50)) == []
    assert list(AuditEvent.objects.filter(operation=OP).values_list("outcome", flat=True)) == ["ok", "ok"]  # tick + replay
    assert len(stops(opened)) == 1


def policy_form(name: str, *levels: tuple[int, str]) -> dict:
    """The policy as the setup form posts it."""
    rows = {f"levels-{key}-{i}": [str(value)] for i, (minutes, targets) in enumerate(levels)
            for key, value in (("after_minutes", minutes), ("targets", targets))}  # fmt: skip
    return {"name": [name], "description": [""], **rows}


def test_saving_a_shorter_policy_ends_the_schedules_it_cannot_honour(opened, t0, make_user, actor_of):
    """Editing a policy (comms.save_escalation_policy) below an open incident's level ends that incident's schedule
    at once, by the editor; an incident still below the new last level keeps its schedule."""
    incidents.escalate_due(now=t0 + timedelta(minutes=5))
    data = AlertIn(type="Latency", severity="critical", title="slow", service="api", dedup_key="slow", policy="api-oncall")
    lower = incidents.receive_alert(data, "t", now=t0 + timedelta(minutes=5)).incident
    opened.refresh_from_db()
    assert (opened.escalation_level, lower.escalation_level) == (2, 1)
    admin = actor_of(make_user("admin"))
    policy = EscalationPolicy.objects.get(name="api-oncall")

    invoke("comms.save_escalation_policy", admin, {"id": policy.pk, "data": policy_form("api-oncall", (0, "ops-slack"), (5, "oncall-sms"))})
    assert len(EscalationPolicy.objects.get(pk=policy.pk).levels) == 2
    assert AuditEvent.objects.get(operation="comms.save_escalation_policy").outcome == "ok"
    opened.refresh_from_db()
    assert (opened.escalation_level, opened.next_escalation_at) == (2, None)
    stopped = opened.timeline.get(text__startswith="Escalation stopped")
    assert (stopped.text, stopped.actor) == ("Escalation stopped at level 2: policy api-oncall has no level 3", admin.name)
    lower.refresh_from_db()
    assert (lower.next_escalation_at, stops(lower)) == (t0 + timedelta(minutes=10), [])

    # The clock: `lower` reaches the last level and is not due again; `opened` is never called for.
    assert [i.pk for i in incidents.escalate_due(now=t0 + timedelta(minutes=40))] == [lower.pk]
    lower.refresh_from_db()
    assert (lower.escalation_level, lower.next_escalation_at) == (2, None)
    assert incidents.escalate_due(now=t0 + timedelta(minutes=50)) == []
    assert AuditEvent.objects.filter(operation=OP, target=f"incident {opened.pk}").count() == 1  # its level-2 tick
