"""One write path: every page that changes state does it through an operation and
the gateway (role check, audit event), and the Django admin changes nothing."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.models import ApiToken
from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.comms.models import AllowedNetwork, Connector, DeliveryPreference, Target
from apps.core import operations
from apps.monitoring.models import PrometheusSource

WRITES = re.compile(r"\.save\(|\.delete\(|objects\.create\(|\.update\(|update_or_create\(|get_or_create\(|\brecord\(")
# Views that write an audit event about themselves and change nothing else.
AUDITS_ITSELF = {"LoginView", "export"}  # a login attempt; an audit export (who read the log)


def _views(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _views(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def _source(view) -> tuple[str, str]:
    view = getattr(view, "view_class", view)
    while hasattr(view, "__wrapped__"):
        view = view.__wrapped__
    return view.__name__, inspect.getsource(view)


def test_no_console_view_writes_around_the_gateway():
    """Walks every URL: no view of the console's own apps saves, deletes or audits by itself."""
    offenders = []
    for route, callback in _views(get_resolver().url_patterns):
        if not getattr(callback, "__module__", "").startswith("apps."):
            continue
        name, source = _source(callback)
        if name not in AUDITS_ITSELF and WRITES.search(source.replace("context.update(", "")):  # a dict, not a row
            offenders.append(f"{route} -> {name}")
    # Marking one's own notifications read is the one write left: a person's reading state, not configuration.
    assert offenders == ["notifications/read/ -> notifications_read"], offenders


def _writes_rows(func) -> bool:
    """Whether a function's own body saves, deletes, creates or updates rows: a model's save() or delete(), a
    manager's or queryset's create() or update() (`X.objects.create(`, `X.objects.filter(...).update(`), not a
    dict's or a hash's update()."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except OSError:  # made at run time (a form operation's function): no source to read
        return False
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, receiver = node.func.attr, node.func.value
        if attr in ("save", "delete", "bulk_create", "bulk_update", "update_or_create", "get_or_create"):
            return True
        if attr in ("create", "update") and (isinstance(receiver, ast.Call) or getattr(receiver, "attr", "") == "objects"):
            return True
    return False


def _helpers_called(module) -> set[str]:
    """The console's functions of other modules a module uses (`f` imported, or `module.f`) that write rows
    themselves or are an operation's function: a write one call away from a view, around the gateway."""
    found = set()
    functions = {op.func for op in operations.all_operations()}
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = getattr(module, node.value.id, None)
            name, obj = f"{node.value.id}.{node.attr}", getattr(owner, node.attr, None) if inspect.ismodule(owner) else None
        elif isinstance(node, ast.Name):
            name, obj = node.id, getattr(module, node.id, None)
        else:
            continue
        if not inspect.isfunction(obj) or not obj.__module__.startswith("apps.") or obj.__module__ == module.__name__:
            continue
        if obj in functions or _writes_rows(obj):
            found.add(name)
    return found


# Helpers the front doors call that write by themselves, each with why it is not an operation (yet).
# (The audit writer's own calls are listed by module and function in RECORDS_AROUND_THE_GATEWAY below.)
# (None now: the security upload page stages the file's bytes, no row, and the scan operation claims it.)
HELPERS_AROUND_THE_GATEWAY: dict[str, set[str]] = {}


def test_no_view_or_mcp_module_calls_a_helper_that_writes_around_the_gateway():
    """One call away: a view (or the MCP endpoint) that calls a helper which changes rows writes around the gateway
    as surely as one that saves itself — the job page's Cancel did (`jobs.cancel`) until it became core.cancel_job."""
    names = {callback.__module__ for _, callback in _views(get_resolver().url_patterns)}
    names |= {f"apps.mcp.{p.stem}" for p in (APPS / "mcp").glob("*.py") if p.stem != "__init__"}
    modules = [importlib.import_module(name) for name in sorted(names) if name.startswith("apps.")]
    found = {module.__name__: helpers for module in modules if (helpers := _helpers_called(module))}
    assert found == HELPERS_AROUND_THE_GATEWAY


APPS = Path(__file__).resolve().parents[2] / "apps"
# The audit writer called around the gateway, by module and function. Each is an event that changes nothing
# else (or, marked so, is inside a gateway call): a state change is an operation, audited by the gateway.
RECORDS_AROUND_THE_GATEWAY = {
    "accounts/signals.py": {"audit_login", "audit_login_failure", "audit_logout"},  # a sign-in, refused or not; a sign-out
    "accounts/views.py": {"LoginView.post"},  # a sign-in refused by the rate limit
    "accounts/oauth_limits.py": {"_audit_first"},  # a token or revocation request refused by the rate limit
    "mcp/auth.py": {"_audit_refused"},  # a refused API token
    "audit/views.py": {"_audit_access"},  # who read or exported the log
    "audit/anchors.py": {"_to_stream"},  # the chain's own anchor
    "audit/activity.py": {"record_and_show"},  # the gateway's audit hook itself
    "approvals/breakglass.py": {"break_glass"},  # the alarm of a break-glass call: inside the gateway's call
    "approvals/execution.py": {"_drifted"},  # a drifted plan: inside the approved job's start (gateway.run_job)
}


def _is_audit_write(node) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    if isinstance(func, ast.Name):
        return func.id == "record"
    return isinstance(func, ast.Attribute) and func.attr == "record" and getattr(func.value, "id", "") == "writer"


def _functions_writing_audit(node, where=()) -> set[str]:
    found = set()
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found |= _functions_writing_audit(child, (*where, child.name))
            continue
        if _is_audit_write(child):
            found.add(".".join(where))
        found |= _functions_writing_audit(child, where)
    return found


def test_no_state_change_writes_the_audit_log_around_the_gateway():
    """Every call of the audit writer (`record(...)`) in the console's code, by function. A vote, an
    acknowledgement, an expiry change a request: they are operations (approvals.approve, .reject, .acknowledge,
    .expire), not a state change followed by a hand-written event. What still writes the log by itself is listed
    above with why; a new call of the writer fails here until it is an operation or earns its line."""
    found = {}
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" in path.parts or path == APPS / "audit" / "writer.py":
            continue
        functions = _functions_writing_audit(ast.parse(path.read_text()))
        if functions:
            found[str(path.relative_to(APPS))] = functions
    assert found == RECORDS_AROUND_THE_GATEWAY


def test_no_consumer_middleware_signal_or_mcp_module_writes_a_row():
    """The other front doors (websocket consumers, middleware, signal receivers, the MCP endpoint) change no row
    themselves: they call the gateway (their audit-only events are listed above)."""
    paths = [*APPS.glob("*/consumers.py"), *APPS.glob("*/middleware.py"), *APPS.glob("*/signals.py"), *(APPS / "mcp").glob("*.py")]
    offenders = [str(p.relative_to(APPS)) for p in paths if WRITES.search(re.sub(r"\brecord\(", "", p.read_text()))]
    assert offenders == []


@pytest.fixture
def connector(db):
    return Connector.objects.create(name="mail", kind="email", url="", options={}, enabled=True)


CASES = {
    # name: (url, form, model, lookup, operation)
    "connector": ("/comms/setup/connectors/", {"name": "hook", "kind": "webhook", "url": "https://hooks.example.test/x",
                  "options": "{}", "secret": "whsec-typed-once", "enabled": "on"}, Connector, {"name": "hook"}, "comms.save_connector"),
    "target": ("/comms/setup/targets/", {"name": "ops", "connector": "{connector}", "recipient": "ops@example.test"},
               Target, {"name": "ops"}, "comms.save_target"),
    "network": ("/comms/setup/networks/", {"cidr": "10.9.0.0/16", "note": "lab"}, AllowedNetwork, {"cidr": "10.9.0.0/16"},
                "comms.save_allowed_network"),
    "source": ("/monitoring/sources/new/", {"name": "prom2", "base_url": "http://127.0.0.1:1", "alertmanager_url": "",
               "auth_type": "bearer", "username": "", "secret": "prom-s3cret", "secret_env": "", "timeout_seconds": "5"},
               PrometheusSource, {"name": "prom2"}, "monitoring.save_source"),
    "policy": ("/approvals/policies/", {"operation": "core.purge_jobs", "scope": "", "requires_approval": "on", "quorum": "2",
               "expiry_hours": "24", "wait_minutes": "0", "group_quorum": "{}"}, ApprovalPolicy, {"operation": "core.purge_jobs"},
               "approvals.save_policy"),
    "user": ("/accounts/users/new/", {"username": "newbie", "roles": ["operator"], "teams": "", "password": "a-long-enough-pass-42",
             "is_active": "on"}, get_user_model(), {"username": "newbie"}, "accounts.save_user"),
}  # fmt: skip


def _form(case: str, connector) -> dict:
    return {k: (v.replace("{connector}", str(connector.pk)) if isinstance(v, str) else v) for k, v in CASES[case][1].items()}


@pytest.mark.parametrize("case", CASES)
def test_each_setup_page_writes_through_an_audited_operation(client_as, connector, case):
    url, _, model, lookup, op = CASES[case]
    client = client_as("admin")
    response = client.post(url, _form(case, connector))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert model.objects.filter(**lookup).exists()
    event = AuditEvent.objects.get(operation=op)
    assert (event.outcome, event.channel, event.actor) == ("ok", "web", client.user.username)
    text = str(event.params)
    assert "whsec-typed-once" not in text and "prom-s3cret" not in text and "a-long-enough" not in text


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "auditor"])
@pytest.mark.parametrize("case", CASES)
def test_a_denied_role_changes_nothing(client_as, connector, case, role):
    url, _, model, lookup, _op = CASES[case]
    client = client_as(role)
    assert client.post(url, _form(case, connector)).status_code == 403
    assert not model.objects.filter(**lookup).exists()


def test_deleting_through_a_setup_page_is_an_audited_operation(client_as, connector):
    client = client_as("admin")
    network = AllowedNetwork.objects.create(cidr="10.8.0.0/16")
    assert client.post(f"/comms/setup/networks/{network.pk}/delete/").status_code == 302
    assert not AllowedNetwork.objects.filter(pk=network.pk).exists()
    assert AuditEvent.objects.get(operation="comms.delete_allowed_network").target == str(network.pk)
    assert client_as("operator").post(f"/comms/setup/connectors/{connector.pk}/delete/").status_code == 403
    assert Connector.objects.filter(pk=connector.pk).exists()


def test_a_person_sets_only_their_own_delivery_preference(client_as, make_user, connector, actor_of):
    from apps.core.errors import InvalidInput
    from apps.core.gateway import invoke

    client = client_as("viewer")
    form = {"connector": connector.pk, "recipient": "me@example.test", "enabled": "on"}
    assert client.post("/comms/preference/", form).status_code == 302
    mine = DeliveryPreference.objects.get(user=client.user)
    assert AuditEvent.objects.get(operation="comms.save_delivery_preference").actor == client.user.username
    other = actor_of(make_user("viewer"))
    with pytest.raises(InvalidInput, match="no delivery preference"):
        data = {"connector": [str(connector.pk)], "recipient": ["x@y.test"]}
        invoke("comms.save_delivery_preference", other, {"id": mine.pk, "data": data})
    mine.refresh_from_db()
    assert mine.recipient == "me@example.test"


def test_tokens_are_issued_and_revoked_through_operations(client_as):
    client = client_as("operator")
    assert client.post("/accounts/tokens/new/", {"name": "agent", "scopes": ["operator"], "expires_in_days": "7"}).status_code == 302
    token = ApiToken.objects.get(user=client.user)
    created = AuditEvent.objects.get(operation="accounts.create_token")
    assert created.outcome == "ok" and "opc_" not in str(created.params)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEvent.objects.get(operation="accounts.revoke_token").outcome == "ok"


# --- the Django admin -----------------------------------------------------------------------


@pytest.fixture
def superuser_client(client, make_user):
    user = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_the_django_admin_shows_but_never_writes(superuser_client, connector):
    from apps.infrastructure.models import Environment

    env = Environment.objects.create(name="prod", engine_url="unix:///run/none.sock", protected=True, quorum=2)
    before = AuditEvent.objects.count()
    page = superuser_client.get(f"/django-admin/infrastructure/environment/{env.pk}/change/")
    assert page.status_code == 200 and b'name="protected"' not in page.content  # shown read-only
    listing = superuser_client.get("/django-admin/infrastructure/environment/").content.decode()
    assert "addlink" not in listing and "delete_selected" not in listing

    attempts = [
        (f"/django-admin/infrastructure/environment/{env.pk}/change/", {"name": "prod", "engine_url": "x", "protected": "", "quorum": "1"}),
        (f"/django-admin/infrastructure/environment/{env.pk}/delete/", {"post": "yes"}),
        ("/django-admin/infrastructure/environment/add/", {"name": "dev", "engine_url": "unix:///x", "quorum": "1"}),
        ("/django-admin/infrastructure/environment/", {"action": "delete_selected", "_selected_action": [env.pk], "post": "yes"}),
        (f"/django-admin/auth/user/{superuser_client.session['_auth_user_id']}/password/", {"password1": "x", "password2": "x"}),
    ]
    for url, data in attempts:
        assert superuser_client.post(url, data).status_code == 405, url
    env.refresh_from_db()
    assert (env.protected, env.quorum, Environment.objects.count()) == (True, 2, 1)
    assert AuditEvent.objects.count() == before
    assert superuser_client.get(f"/django-admin/infrastructure/environment/{env.pk}/delete/").status_code == 403


def test_the_django_admin_login_is_the_consoles(client):
    response = client.get("/django-admin/login/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post("/django-admin/login/", {"username": "x", "password": "y"}).status_code == 302


def test_a_password_input_is_redacted_whatever_its_name(make_user, actor_of):
    """A form's write-only inputs stay out of the audit log even when their names look harmless."""
    from django import forms

    from apps.comms.forms import AllowedNetworkForm
    from apps.core.form_operations import form_operations
    from apps.core.gateway import invoke

    class SecretNoteForm(AllowedNetworkForm):
        note = forms.CharField(required=False, widget=forms.PasswordInput)

    form_operations("testing.secret_note", AllowedNetwork, SecretNoteForm, permission="core.manage_connectors")
    invoke("testing.save_secret_note", actor_of(make_user("admin")), {"data": {"cidr": ["10.7.0.0/16"], "note": ["hunter2-note"]}})
    assert AllowedNetwork.objects.get(cidr="10.7.0.0/16").note == "hunter2-note"
    event = AuditEvent.objects.get(operation="testing.save_secret_note")
    assert event.params["data"] == {"cidr": ["10.7.0.0/16"], "note": "[redacted]"}
