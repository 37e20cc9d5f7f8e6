"""The environment and runbook editors: prefilled, a "what changes" step before saving, nothing
written when nothing changes, and a lowered guard that lands on its approval request and changes
nothing until another person approves it. No engine needed: nothing here reaches one."""

import html
import re
from html.parser import HTMLParser

import pytest

from apps.approvals import services as approvals
from apps.audit.models import AuditEvent
from apps.core.gateway import invoke, run_job
from apps.core.models import Job
from apps.infrastructure.models import Environment, Runbook

ENV = {
    "engine_url": "unix:///run/none.sock", "tls_ca_cert": "", "tls_client_cert": "", "tls_client_key": "", "quorum": "2",
    "publish_address": "127.0.0.1", "host_address": "127.0.0.1", "router_image": "busybox:1.36", "timeout_seconds": "30",
}  # fmt: skip


@pytest.fixture
def admin(make_user, client):
    user = make_user("admin", "approver")
    client.force_login(user)
    return user


@pytest.fixture
def prod(admin, actor_of):
    invoke(
        "infrastructure.save_environment",
        actor_of(admin),
        {"name": "prod", "engine_url": ENV["engine_url"], "protected": True, "quorum": 2},
    )
    return Environment.objects.get(name="prod")


def save_env(actor, quorum: int):
    invoke("infrastructure.save_environment", actor, {"name": "prod", "engine_url": ENV["engine_url"], "protected": True, "quorum": quorum})


def sealed(response) -> str:
    return re.search(r'name="sealed" value="([^"]+)"', response.content.decode()).group(1)


def changes(response) -> list[str]:
    """The confirmation's rows as 'field: old → new'."""
    rows = re.findall(r'<th scope="row">(.*?)</th><td><code>(.*?)</code></td><td aria-hidden="true">→</td><td><code>(.*?)</code>',
                      response.content.decode())  # fmt: skip
    return [html.unescape(f"{field}: {old} → {new}") for field, old, new in rows]


def saves() -> int:
    return AuditEvent.objects.filter(operation="infrastructure.save_environment").count()


def test_the_environment_editor_is_prefilled(client, prod):
    page = client.get("/infrastructure/environments/prod/").content.decode()
    assert re.search(r'name="protected"[^>]*checked', page) and 'name="quorum" value="2"' in page
    assert 'value="unix:///run/none.sock"' in page and re.search(r'name="name"[^>]*disabled', page)
    assert "Approvals required" in page
    assert 'name="quorum" value="1"' in client.get("/infrastructure/environments/new/").content.decode()  # new: the defaults


def test_an_unchanged_save_writes_nothing(client, prod):
    before = saves()
    response = client.post("/infrastructure/environments/prod/", {**ENV, "protected": "on"})
    assert response.status_code == 200 and "Nothing to change" in response.content.decode()
    assert saves() == before


def test_lowering_protection_shows_the_change_then_waits_for_another_persons_approval(client, prod, make_user, actor_of):
    before = saves()
    review = client.post("/infrastructure/environments/prod/", {**ENV, "quorum": "1"})  # "protected" unticked
    assert review.status_code == 200
    assert changes(review) == ["protected: yes → no", "approvals required: 2 → 1"]
    assert "This lowers a guard" in review.content.decode() and saves() == before  # a review writes nothing

    done = client.post("/infrastructure/environments/prod/", {"sealed": sealed(review), "confirm": "1", "approval_reason": "retire"})
    event = AuditEvent.objects.get(operation="infrastructure.save_environment", outcome="pending")
    assert done.status_code == 302 and done["Location"] == f"/approvals/{event.approval_id}/"
    assert (Environment.objects.get(name="prod").protected, Environment.objects.get(name="prod").quorum) == (True, 2)
    own = client.post(f"/approvals/{event.approval_id}/vote/", {"decision": "approve"}, follow=True)
    assert "own request" in own.content.decode() and Environment.objects.get(name="prod").protected

    approvals.vote(int(event.approval_id), actor_of(make_user("approver")), "approve")
    run_job(str(Job.objects.get(approval_id=event.approval_id).pk))
    assert (Environment.objects.get(name="prod").protected, Environment.objects.get(name="prod").quorum) == (False, 1)


def test_raising_a_guard_applies_on_confirmation(client, prod):
    review = client.post("/infrastructure/environments/prod/", {**ENV, "protected": "on", "quorum": "3"})
    assert changes(review) == ["approvals required: 2 → 3"] and "applies as soon as you confirm" in review.content.decode()
    assert Environment.objects.get(name="prod").quorum == 2
    done = client.post("/infrastructure/environments/prod/", {"sealed": sealed(review), "confirm": "1"})
    assert done.status_code == 302 and done["Location"] == "/infrastructure/"
    assert Environment.objects.get(name="prod").quorum == 3


def test_a_confirmation_is_for_the_state_it_was_reviewed_against(client, prod, admin, actor_of):
    review = client.post("/infrastructure/environments/prod/", {**ENV, "protected": "on", "quorum": "3"})
    invoke(
        "infrastructure.save_environment",
        actor_of(admin),
        {"name": "prod", "engine_url": ENV["engine_url"], "protected": True, "quorum": 4},
    )
    again = client.post("/infrastructure/environments/prod/", {"sealed": sealed(review), "confirm": "1"})
    assert again.status_code == 200 and changes(again) == ["approvals required: 4 → 3"]
    assert "changed since you reviewed it" in again.content.decode() and Environment.objects.get(name="prod").quorum == 4
    assert "This lowers a guard" in again.content.decode()  # 4 → 3 now lowers the quorum
    confirmed = client.post("/infrastructure/environments/prod/", {"sealed": sealed(again), "confirm": "1"})  # reviewed anew
    assert confirmed["Location"].startswith("/approvals/") and Environment.objects.get(name="prod").quorum == 4
    forged = client.post("/infrastructure/environments/prod/", {"sealed": "not-a-token", "confirm": "1"})
    assert forged.status_code == 422 and Environment.objects.get(name="prod").quorum == 4


def test_a_new_environment_and_field_errors_next_to_their_fields(client, admin):
    bad = client.post("/infrastructure/environments/new/", {**ENV, "name": "Bad Name", "engine_url": "http://x"})
    page = bad.content.decode()
    assert bad.status_code == 422 and page.count('class="errorlist') >= 2 and "String should match pattern" in page
    review = client.post("/infrastructure/environments/new/", {**ENV, "name": "qa"})
    assert "name: — → qa" in changes(review) and not Environment.objects.filter(name="qa").exists()
    client.post("/infrastructure/environments/new/", {"sealed": sealed(review), "confirm": "1"})
    assert Environment.objects.get(name="qa").quorum == 2


def test_only_environment_managers_edit(client_as, prod):
    assert client_as("operator").get("/infrastructure/environments/prod/").status_code == 403


# --- runbooks ------------------------------------------------------------------------------

ARGV = ["/bin/echo", "two words", 'it\'s "quoted"', "  padded ", "{target}"]


def runbook_form(tmp_path, argv=ARGV, **fields) -> dict:
    data = {"description": "", "working_dir": str(tmp_path), "timeout_seconds": "60", "output_cap_bytes": str(256 * 1024),
            "cpu_seconds": "60", "memory_mb": "512", "max_processes": "64", "max_file_mb": "64", "enabled": "on"}  # fmt: skip
    for i, arg in enumerate(argv):
        data[f"argv-arg-{i}"] = arg
    data.update({"parameters-name-0": "target", "parameters-type-0": "string", "parameters-required-0": "on"})
    for key in ("default", "description", "choices", "pattern", "minimum", "maximum", "max_length"):
        data[f"parameters-{key}-0"] = ""
    data.update({"env-name-0": "", "env-value-0": ""})
    return {**data, **fields}


def save_runbook(client, url, data):
    review = client.post(url, data)
    assert review.status_code == 200, review.content.decode()
    return review, client.post(url, {"sealed": sealed(review), "confirm": "1"})


def test_argv_rows_round_trip_exactly(client, admin, tmp_path):
    # Risky: a new risky runbook saves at once (a not-risky one waits for another person, test_guarded_guards.py).
    _, done = save_runbook(client, "/infrastructure/runbooks/new/", runbook_form(tmp_path, name="greet", risky="on"))
    assert done.status_code == 302
    assert Runbook.objects.get(name="greet").argv == ARGV
    page = client.get("/infrastructure/runbooks/greet/edit/").content.decode()
    assert 'value="it&#x27;s &quot;quoted&quot;"' in page and 'value="  padded "' in page and 'value="two words"' in page
    unchanged = client.post("/infrastructure/runbooks/greet/edit/", runbook_form(tmp_path, risky="on"))
    assert "Nothing to change" in unchanged.content.decode()
    assert AuditEvent.objects.filter(operation="infrastructure.save_runbook").count() == 1


def test_a_risky_runbooks_argv_change_shows_then_waits_for_approval(client, admin, tmp_path):
    save_runbook(
        client,
        "/infrastructure/runbooks/new/",
        runbook_form(tmp_path, name="greet", risky="on", **{"env-name-0": "TOKEN", "env-value-0": "s3cret"}),
    )
    edited = runbook_form(tmp_path, risky="on", **{"argv-arg-1": "three words", "env-name-0": "TOKEN", "env-value-0": ""})
    review, done = save_runbook(client, "/infrastructure/runbooks/greet/edit/", edited)
    assert changes(review) == [
        'argv: ["/bin/echo", "two words", "it\'s \\"quoted\\"", "  padded ", "{target}"] → '
        '["/bin/echo", "three words", "it\'s \\"quoted\\"", "  padded ", "{target}"]'
    ]
    assert "This lowers a guard" in review.content.decode() and "s3cret" not in review.content.decode()
    assert done.status_code == 302 and done["Location"].startswith("/approvals/")
    stored = Runbook.objects.get(name="greet")
    assert stored.argv == ARGV and stored.env == {"TOKEN": "s3cret"}  # kept: an empty value keeps the stored one


def test_a_bad_parameter_type_is_an_error_on_the_parameters_field(client, admin, tmp_path):
    response = client.post("/infrastructure/runbooks/new/", runbook_form(tmp_path, name="greet", **{"parameters-type-0": "float"}))
    page = response.content.decode()
    assert response.status_code == 422 and "parameters.0.type" in page and not Runbook.objects.exists()
    field = page[page.index('id="id_parameters"') :]
    assert field.index("errorlist") < field.index('id="id_working_dir"')  # next to its field, not on top


def test_more_rows_only_redraws(client, admin, tmp_path):
    filled = {"argv-arg-5": "a", "argv-arg-6": "b"}  # the two empty rows drawn last time, filled
    response = client.post("/infrastructure/runbooks/new/", {**runbook_form(tmp_path, name="greet"), **filled, "more_rows": "1"})
    page = response.content.decode()
    assert response.status_code == 200 and 'name="argv-arg-8"' in page and 'name="argv-arg-9"' not in page
    assert not Runbook.objects.exists()


def test_change_it_redraws_the_reviewed_form(client, prod):
    review = client.post("/infrastructure/environments/prod/", {**ENV, "protected": "on", "quorum": "5"})
    back = client.post("/infrastructure/environments/prod/", {"sealed": sealed(review), "edit": "1"})
    assert back.status_code == 200 and 'name="quorum" value="5"' in back.content.decode()
    assert Environment.objects.get(name="prod").quorum == 2


class FormValues(HTMLParser):
    """What a browser would submit from the page's editor form, as it was rendered (prefilled)."""

    def __init__(self):
        super().__init__()
        self.data, self._select, self._textarea, self._in_form = {}, None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._in_form = a.get("id") == "editor-form"
        if not self._in_form or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "password"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.data[a["name"]] = a.get("value") or ("on" if a.get("type") == "checkbox" else "")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and ("selected" in a or self._select not in self.data):
            self.data[self._select] = a["value"]
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data[a["name"]] = ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        self._select = None if tag == "select" else self._select
        self._textarea = None if tag == "textarea" else self._textarea


def rendered_form(client, url) -> dict:
    parser = FormValues()
    parser.feed(client.get(url).content.decode())
    return parser.data


@pytest.mark.parametrize("risky", [False, True])
def test_what_the_editors_prefill_saves_back_as_nothing_to_change(client, admin, prod, tmp_path, risky):
    params = [
        {"name": "count", "type": "int", "default": 3, "minimum": 1, "maximum": 9},
        {"name": "mode", "type": "choice", "choices": ["fast", "slow"], "required": False, "description": "How"},
        {"name": "force", "type": "bool", "default": False},
    ]
    Runbook.objects.create(name="tidy", argv=["/bin/echo", "{count}", "{mode}", "{force}"], parameters=params,
                           working_dir=str(tmp_path), env={"TOKEN": "s3cret"}, risky=risky)  # fmt: skip
    before = AuditEvent.objects.count()
    for url in ("/infrastructure/environments/prod/", "/infrastructure/runbooks/tidy/edit/"):
        data = rendered_form(client, url)
        assert "s3cret" not in str(data)
        response = client.post(url, data)
        assert response.status_code == 200 and "Nothing to change" in response.content.decode(), (url, changes(response))
    assert AuditEvent.objects.count() == before
