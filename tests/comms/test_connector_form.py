"""The connector form: the options each kind reads are typed fields, prefilled from what
is stored; the secret is never rendered and kept when left empty; the save is audited."""

from apps.audit.models import AuditEvent
from apps.comms.models import Connector

from . import peers as p


def test_email_options_are_typed_prefilled_and_saved(client_as, connectors):
    email = connectors["email"]
    Connector.objects.filter(pk=email.pk).update(options={**email.options, "use_ssl": False})  # a key the form does not show
    client = client_as("admin")
    page = client.get(f"/comms/setup/connectors/{email.pk}/").content.decode()
    assert 'name="smtp_host" value="127.0.0.1"' in page and f'name="smtp_port" value="{email.options["port"]}"' in page
    assert f'name="smtp_username" value="{p.SMTP_USER}"' in page and 'name="sender" value="console@example.test"' in page
    assert p.SMTP_PASSWORD not in page and 'name="options"' not in page  # no JSON to type, no secret shown

    form = {"name": "smtp", "kind": "email", "smtp_host": "mail.example.test", "smtp_port": "2525", "smtp_username": p.SMTP_USER,
            "smtp_tls": "yes", "sender": "ops@example.test", "account_sid": "AC-not-email", "secret": "", "enabled": "on"}  # fmt: skip
    assert client.post(f"/comms/setup/connectors/{email.pk}/", form).status_code == 302
    saved = Connector.objects.get(pk=email.pk)
    assert saved.options == {"host": "mail.example.test", "port": 2525, "username": p.SMTP_USER, "use_tls": True,
                             "from": "ops@example.test", "use_ssl": False}  # fmt: skip
    assert saved.secret == p.SMTP_PASSWORD  # left empty: kept
    event = AuditEvent.objects.get(operation="comms.save_connector")
    assert event.outcome == "ok" and p.SMTP_PASSWORD not in str(event.params)


def test_sms_options_and_a_bad_port_is_a_field_error(client_as, connectors):
    sms = connectors["sms"]
    client = client_as("admin")
    page = client.get(f"/comms/setup/connectors/{sms.pk}/").content.decode()
    assert f'name="account_sid" value="{p.TWILIO_SID}"' in page and p.TWILIO_TOKEN not in page
    form = {"name": "twilio", "kind": "sms", "account_sid": "AC123", "sender": "+15550000002", "smtp_host": "ignored", "enabled": "on"}
    assert client.post(f"/comms/setup/connectors/{sms.pk}/", form).status_code == 302
    saved = Connector.objects.get(pk=sms.pk)
    assert saved.options == {"account_sid": "AC123", "from": "+15550000002"} and saved.secret == p.TWILIO_TOKEN
    bad = client.post(f"/comms/setup/connectors/{sms.pk}/", {**form, "kind": "email", "smtp_port": "70000"})
    assert bad.status_code == 422 and "less than or equal to 65535" in bad.content.decode()
    assert Connector.objects.get(pk=sms.pk).kind == "sms"
