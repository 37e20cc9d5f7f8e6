"""Credentials never show up in the audit log, the logs, job params, delivery
rows or the setup pages, and are encrypted in the database."""

import logging

from django.db import connection

from apps.audit.models import AuditEvent
from apps.comms.models import Connector, Delivery
from apps.core.gateway import invoke
from apps.core.models import Job

from . import peers as p
from .test_notifications import ALL


def test_secrets_absent_from_audit_logs_and_rows(make_user, actor_of, connectors, client, caplog, run_job, slack):
    caplog.set_level(logging.DEBUG)  # slack_sdk, httpx, httpcore, smtplib: everything they log
    operator = actor_of(make_user("operator"))
    job = run_job(invoke("comms.send_notification", operator, {"title": "x", "channels": ALL}))
    assert {d["status"] for d in job.result["deliveries"]} == {"sent"}
    slack.fail_next(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "0"})
    run_job(invoke("comms.post_message", operator, {"channel_type": "slack", "recipient": "#ops", "title": "y"}))
    run_job(invoke("comms.post_message", operator, {"channel_type": "sms", "recipient": "bad", "title": "z"}))  # a failure too

    admin = make_user("admin")
    client.force_login(admin)
    response = client.post(
        "/comms/setup/connectors/",
        {"name": "slack-2", "kind": "slack", "url": "", "secret": "xoxb-typed-in-the-form", "enabled": "on"},
    )
    assert response.status_code == 302
    pages = [client.get(f"/comms/setup/connectors/{c.pk}/").content.decode() for c in Connector.objects.all()]
    pages.append(client.get("/comms/setup/connectors/").content.decode())

    haystacks = {
        "logs": caplog.text,
        "audit": "\n".join(str(e.params) + e.error + e.target for e in AuditEvent.objects.all()),
        "jobs": "\n".join(str(j.params_redacted) + j.error + str(j.result) for j in Job.objects.all()),
        "deliveries": "\n".join(str(d.message) + d.error + d.note + d.recipient for d in Delivery.objects.all()),
        "pages": "\n".join(pages),
    }
    for name, text in haystacks.items():
        for secret in [*p.SECRETS, "xoxb-typed-in-the-form"]:
            assert secret not in text, f"{secret} leaked into {name}"
    assert "Sending a request" in caplog.text  # slack_sdk's debug log was captured, with the token redacted
    assert AuditEvent.objects.filter(operation="comms.save_connector", outcome="ok").exists()

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM comms_connector WHERE name = 'slack-2'")
        stored = cursor.fetchone()[0]
    assert stored.startswith("gAAAA") and "xoxb" not in stored  # Fernet
    assert Connector.objects.get(name="slack-2").secret == "xoxb-typed-in-the-form"


def test_saving_a_connector_without_a_secret_keeps_the_stored_one(client, make_user, connectors):
    client.force_login(make_user("admin"))
    slack = connectors["slack"]
    response = client.post(
        f"/comms/setup/connectors/{slack.pk}/",
        {"name": "slack", "kind": "slack", "url": slack.url, "secret": "", "enabled": "on"},
    )
    assert response.status_code == 302
    assert Connector.objects.get(pk=slack.pk).secret == p.SLACK_TOKEN
    client.post(
        f"/comms/setup/connectors/{slack.pk}/",
        {"name": "slack", "kind": "slack", "url": slack.url, "clear_secret": "on", "enabled": "on"},
    )
    assert Connector.objects.get(pk=slack.pk).secret == ""


def test_webhook_urls_are_encrypted_write_only_and_masked(client, make_user, receiver):
    url = f"{receiver.url}/teams/{p.TEAMS_KEY}?sig=query-token-1234"
    hook = Connector.objects.create(name="teams-url", kind="teams", url=url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT url FROM comms_connector WHERE name = 'teams-url'")
        assert cursor.fetchone()[0].startswith("gAAAA")  # Fernet, like the secrets
    client.force_login(make_user("admin"))
    listing = client.get("/comms/setup/connectors/").content.decode()
    edit = client.get(f"/comms/setup/connectors/{hook.pk}/").content.decode()
    assert f"http://127.0.0.1:{receiver.port}/…" in listing
    for page in (listing, edit):
        assert p.TEAMS_KEY not in page and "query-token-1234" not in page
    # Left empty on edit, the stored URL stays; "clear" forgets it.
    form = {"name": "teams-url", "kind": "teams", "url": "", "secret": "", "enabled": "on"}
    assert client.post(f"/comms/setup/connectors/{hook.pk}/", form).status_code == 302
    assert Connector.objects.get(pk=hook.pk).url == url
    client.post(f"/comms/setup/connectors/{hook.pk}/", {**form, "clear_url": "on"})
    assert Connector.objects.get(pk=hook.pk).url == ""
