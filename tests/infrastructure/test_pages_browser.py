"""Every page for every role, in Chromium, on the demo seed_demo builds: the page
loads with no console error; no link it shows is refused (403) to that role
(each one followed as that role); axe-core reports no serious or critical
accessibility violation; the nav fits on one line at 1280 px; no table is shown without
rows (an empty list shows its empty state).

The page list comes from the URL conf: a route that takes parameters needs an
entry in `kwargs_for`, or a reason in NOT_PAGES — a new page cannot slip past."""

import os
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from playwright.sync_api import Error as PlaywrightError

from apps.accounts.roles import ROLES
from apps.approvals.models import ApprovalPolicy
from apps.audit.models import AuditEvent
from apps.comms.models import Connector, Incident
from apps.core.gateway import invoke
from apps.infrastructure.models import Deployment
from apps.monitoring.models import Dashboard, PrometheusSource
from apps.security.models import Finding, Scan
from apps.storage.demo import DEMO_CONNECTION
from tests.support import peers
from tests.support.processes import Process, console_env, free_port, port_open
from tests.support.waiting import wait_for

from .conftest import labelled, log_in

pytestmark = [pytest.mark.browser, pytest.mark.peer, pytest.mark.timeout(900)]
AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# Not pages a person opens from a link: POST-only actions, downloads, fragments, webhooks, the read-only admin.
NOT_PAGES = {
    "healthz", "metrics", "accounts:login", "accounts:logout", "accounts:token_revoke", "accounts:token_create",
    "core:job_cancel", "core:notifications_read",
    "approvals:vote", "approvals:acknowledge", "approvals:policy_delete",
    "monitoring:silence_expire", "monitoring:dashboard_delete", "monitoring:source_delete",
    "security:scan_state", "security:export_sarif", "security:export_csv", "security:triage", "security:remove_root", "audit:export",
    "audit:export_bundle", "audit:public_key",
    "infrastructure:abort", "infrastructure:promote", "infrastructure:deploy", "infrastructure:rollback", "infrastructure:restart",
    "storage:download", "storage:delete", "storage:upload_ticket", "storage:upload_direct", "storage:connection_test",
    "comms:incident_action", "comms:resend", "comms:alertmanager", "comms:setup_delete",
    "accounts:agent_revoke", "mcp-resource-metadata",  # OAuth (docs/oauth.md): JSON, and the consent page an agent opens
    "oauth2_provider:oauth-server-metadata", "oauth2_provider:authorize", "oauth2_provider:token", "oauth2_provider:revoke-token",
    "oauth2_provider:dcr-register",
}  # fmt: skip
# bin/screenshots (OPSCONSOLE_SCREENSHOTS=docs): one page per app, as the admin sees it on the demo.
SCREENSHOTS = {
    "/monitoring/": "monitoring", "/security/": "security", "/infrastructure/": "infrastructure", "/storage/c/demo-local-s3/": "storage",
    "/comms/": "comms", "/approvals/": "approvals", "/audit/": "audit", "/operations/": "operations", "/agents/": "agents",
}  # fmt: skip
NOT_FOLLOWED = ("/accounts/logout/", "/ws/", "/static/", "/django-admin/")


def routes(patterns=None, namespace=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if p.namespace != "admin":
                yield from routes(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.name:
            yield (f"{namespace}:{p.name}" if namespace else p.name), p.pattern.regex.groupindex


def kwargs_for(demo, podman, deployment) -> dict[str, dict]:
    replica = labelled(podman, deployment.service.environment, role="replica")[0].name
    dashboard = Dashboard.objects.first().slug
    staging, bucket = {"env": demo.staging, "name": "web"}, {"connection": DEMO_CONNECTION, "bucket": "demo-assets"}
    return {
        "core:operation": {"name": "core.echo_job"}, "core:job": {"pk": deployment.job_id},
        "accounts:user_edit": {"pk": deployment.job.requested_by_id}, "audit:detail": {"seq": AuditEvent.objects.latest("seq").seq},
        "approvals:detail": {"pk": Deployment.objects.exclude(approval=None).get().approval_id},
        "approvals:policy_edit": {"pk": ApprovalPolicy.objects.first().pk},
        "monitoring:dashboard": {"slug": dashboard}, "monitoring:dashboard_edit": {"slug": dashboard},
        "monitoring:source_edit": {"pk": PrometheusSource.objects.first().pk},
        "security:scan": {"pk": Scan.objects.first().pk}, "security:finding": {"pk": Finding.objects.first().pk},
        "infrastructure:deployment": {"pk": deployment.pk}, "infrastructure:runbook": {"name": "uptime"},
        "infrastructure:runbook_edit": {"name": "uptime"}, "infrastructure:environment_edit": {"env": demo.production},
        "infrastructure:logs": {"env": demo.staging, "container": replica}, "infrastructure:service": staging,
        "infrastructure:service_edit": staging,
        "storage:buckets": {"connection": DEMO_CONNECTION}, "storage:browse": bucket, "storage:object": bucket, "storage:upload": bucket,
        "storage:connection_edit": {"connection": DEMO_CONNECTION}, "mcp:tools": {"app": "core"},
        "comms:incident": {"pk": Incident.objects.first().pk}, "comms:setup_section": {"section": "connectors"},
        "comms:setup_edit": {"section": "connectors", "pk": Connector.objects.first().pk},
    }  # fmt: skip


def page_urls(kwargs: dict[str, dict]) -> list[str]:
    urls, missing = [], []
    for name, groups in routes():
        if name in NOT_PAGES:
            continue
        if groups and name not in kwargs:
            missing.append(name)
            continue
        urls.append(reverse(name, kwargs=kwargs.get(name)) + ("?key=site/index.html" if name == "storage:object" else ""))
    assert not missing, f"routes with parameters and no demo object to open them with: {missing}"
    return urls


@pytest.fixture
def demo_s3(demo):
    """The demo's S3 (manage.py demo_s3, as bin/console runs it) on a free port."""
    peers.require(AXE.exists(), "axe-core (npm ci, run by bin/test)")
    port = free_port()
    from apps.storage.models import Connection

    Connection.objects.filter(name=DEMO_CONNECTION).update(endpoint_url=f"http://127.0.0.1:{port}")
    process = Process("demo-s3", [sys.executable, "manage.py", "demo_s3", "--port", str(port)], env=console_env())
    process.wait_until(lambda: port_open(port), timeout=60, what="serving S3")
    yield
    process.stop()


@pytest.mark.django_db(transaction=True)
def test_every_page_for_every_role(browser, console_server, celery_worker, demo, demo_s3, podman, actor_of, django_user_model):
    operator = actor_of(django_user_model.objects.get(username="operator"))
    staged = invoke("infrastructure.deploy", operator, {"environment": demo.staging, "service": "web"})
    wait_for(lambda: Deployment.objects.get(job=staged.job).finished_at is not None, timeout=120)  # the worker runs it
    invoke("infrastructure.deploy", operator, {"environment": demo.production, "service": "web"}, reason="ship it")
    deployment = Deployment.objects.select_related("service__environment", "job").get(job=staged.job)
    assert deployment.status == "succeeded", deployment.reason
    urls = page_urls(kwargs_for(demo, podman, deployment))

    problems, axe_checked = [], set()
    for role in ("admin", *[r for r in ROLES if r != "admin"]):
        page = log_in(browser, console_server, role, demo.passwords[role], bypass_csp=True)
        errors: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        fits = page.evaluate("() => { const n = document.querySelector('nav.nav'); return n.scrollWidth <= n.clientWidth }")
        height = page.evaluate("() => document.querySelector('.topbar').getBoundingClientRect().height")
        if not fits or height > 60:
            problems.append(f"{role}: the nav does not fit on one line at 1280 px (topbar {height}px)")
        links: dict[str, str] = {}
        for url in urls:
            page.goto("about:blank")  # late live events of the previous page stay with it
            errors.clear()
            try:
                status = page.goto(console_server + url).status
            except PlaywrightError as exc:
                problems.append(f"{role} {url}: {exc.message.splitlines()[0]}")
                continue
            if status == 403:
                continue
            if status != 200:
                problems.append(f"{role} {url}: HTTP {status}")
                continue
            problems += [f"{role} {url}: console error: {e}" for e in errors]
            if role == "admin" and url in SCREENSHOTS and os.environ.get("OPSCONSOLE_SCREENSHOTS"):
                page.screenshot(path=str(Path(os.environ["OPSCONSOLE_SCREENSHOTS"]) / f"app-{SCREENSHOTS[url]}.png"))
            for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
                href = href.split("#")[0]
                if href.startswith("/") and not href.startswith("//") and not href.startswith(NOT_FOLLOWED):
                    links.setdefault(href, url)
            # A list without rows says so (and what to do) instead of showing bare headings.
            empty_tables = page.eval_on_selector_all("table:has(thead)", "ts => ts.filter(t => !t.querySelector('tbody tr')).length")
            if empty_tables:
                problems.append(f"{role} {url}: {empty_tables} table(s) without rows and no empty state")
            if url not in axe_checked:
                axe_checked.add(url)
                page.add_script_tag(path=str(AXE))
                found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                                      ".filter(v => ['serious', 'critical'].includes(v.impact))"
                                      ".map(v => v.id + ': ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))")  # fmt: skip
                problems += [f"{role} {url}: axe {v}" for v in found]
        for href, shown_on in links.items():
            if page.context.request.get(console_server + href, max_redirects=0).status == 403:
                problems.append(f"{role}: {shown_on} links to {href}, which answers 403 to this role")
        page.context.close()
    assert not problems, "\n".join(problems)
