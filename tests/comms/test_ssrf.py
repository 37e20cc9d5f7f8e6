"""The SSRF guard: targets resolving to loopback, private or link-local addresses
are refused (before any connection) unless an admin allow-listed the network."""

import pytest

from apps.comms.errors import CommsError
from apps.comms.guard import check_url
from apps.comms.models import AllowedNetwork, Connector, Delivery, Target
from apps.core.gateway import invoke


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_internal_targets_are_refused(db, url):
    with pytest.raises(CommsError, match=r"Refused target .*loopback, private or link-local"):
        check_url(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost"])
def test_only_http_urls_with_a_host(db, url):
    with pytest.raises(CommsError, match="only http"):
        check_url(url)


def test_public_address_passes_and_is_pinned(db):
    resolved = check_url("https://93.184.215.14:8443/hook?key=abc")
    assert resolved.pinned_url == "https://93.184.215.14:8443/hook?key=abc" and resolved.host == "93.184.215.14"


def test_an_admin_allow_list_entry_lets_a_network_through(db, settings):
    with pytest.raises(CommsError):
        check_url("http://10.1.2.3/hook")
    AllowedNetwork.objects.create(cidr="10.1.2.0/24")
    assert check_url("http://10.1.2.3/hook").address == "10.1.2.3"
    with pytest.raises(CommsError):
        check_url("http://10.1.3.1/hook")
    settings.COMMS_SSRF_ALLOW = ["10.1.3.0/24"]
    assert check_url("http://10.1.3.1/hook").address == "10.1.3.1"


def test_the_error_never_shows_the_path_or_query_of_the_url(db):
    with pytest.raises(CommsError) as caught:
        check_url("http://127.0.0.1/teams/secret-key-in-path?sig=abc")
    assert "secret-key-in-path" not in caught.value.message and "sig=abc" not in caught.value.message


def test_a_webhook_to_loopback_is_refused_without_the_allow_list(make_user, actor_of, receiver, run_job):
    hook = Connector.objects.create(name="local", kind="webhook", url=receiver.url + "/hooks/ops", secret="s")
    Target.objects.create(name="local-hook", connector=hook)
    job = run_job(invoke("comms.send_notification", actor_of(make_user("operator")), {"title": "x", "channels": ["local-hook"]}))
    (delivery,) = job.result["deliveries"]
    assert delivery["status"] == "failed" and "127.0.0.1, a loopback, private or link-local address" in delivery["error"]
    assert receiver.requests == []  # refused before connecting
    assert Delivery.objects.get(pk=delivery["id"]).next_attempt_at is None
