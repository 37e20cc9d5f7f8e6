"""The monitoring pages, as a browser calls them: each renders real data, shows
errors as messages, and puts label values into PromQL only through the helper."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

from apps.audit.models import AuditEvent


def test_overview_rolls_up_health_per_job(source, client_as):
    page = client_as("viewer").get("/monitoring/").content.decode()
    assert '<span class="pill down" id="overall">down</span>' in page
    row = re.search(r'<tr data-job="dead">.*?</tr>', page, re.S).group(0)
    assert '<span class="pill down">down</span>' in row and "connection refused" in row
    exporter = re.search(r'<tr data-job="exporter">.*?</tr>', page, re.S).group(0)
    assert "critical 1" in exporter and "warning 1" in exporter


def test_targets_page_links_each_instance_with_an_escaped_selector(source, client_as):
    page = client_as("viewer").get("/monitoring/targets/?health=down").content.decode()
    links = re.findall(r'href="(/monitoring/query/\?[^"]+query=[^"]+)"', page)
    assert len(links) == 1 and "1 down" in page
    query = parse_qs(urlsplit(unescape(links[0])).query)["query"][0]
    assert re.fullmatch(r'up\{job="dead",instance="127\.0\.0\.1:\d+"\}', query)


def test_query_page_table_chart_and_error(source, client_as):
    client = client_as("viewer")
    table = client.get("/monitoring/query/", {"query": 'demo_temperature_celsius{room="plain"}'}).content.decode()
    assert re.search(r"room=plain</td><td class=\"num\">12</td>", table)
    chart = client.get("/monitoring/query/", {"query": "rate(demo_ticks_total[5s])", "mode": "range", "range": "5m"})
    assert chart.status_code == 200 and '<path class="line s0"' in chart.content.decode()
    bad = client.get("/monitoring/query/", {"query": "up{"})
    assert bad.status_code == 400 and "Prometheus rejected the request (bad_data)" in bad.content.decode()
    assert "Traceback" not in bad.content.decode()


def test_alerts_page_filters_and_offers_a_silence(source, client_as):
    page = client_as("operator").get("/monitoring/alerts/", {"origin": "alertmanager", "severity": "critical"}).content.decode()
    assert "DemoServiceDown" in page and "DemoQueueBacklog" not in page
    link = re.search(r'href="(/monitoring/silences/\?[^"]+matchers=[^"]+)"', page).group(1)
    matchers = parse_qs(urlsplit(unescape(link)).query)["matchers"][0]
    assert "alertname=DemoServiceDown" in matchers.splitlines() and "severity=critical" in matchers.splitlines()
    assert "Silence…" not in client_as("viewer").get("/monitoring/alerts/").content.decode()


def test_silence_form_creates_and_expires(source, client_as):
    client = client_as("operator")
    form = {"matchers": "alertname=DemoServiceDown\ninstance=~127\\.0\\.0\\.1:.*", "duration_minutes": "15", "comment": "db maintenance"}
    response = client.post("/monitoring/silences/?source=default", form)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    silence_id = re.search(r'id="silence-([0-9a-f-]{36})"', page).group(1)
    assert "instance=~&#x27;127\\\\.0\\\\.0\\\\.1:.*&#x27;" in page and "db maintenance" in page
    expired = client.post(f"/monitoring/silences/{silence_id}/expire/", {"source": "default"}, follow=True).content.decode()
    assert f"Silence {silence_id} expired" in expired and f'id="silence-{silence_id}"' not in expired
    assert AuditEvent.objects.filter(operation="monitoring.silence_expire", outcome="ok").count() == 1
    invalid = client.post("/monitoring/silences/", {**form, "matchers": "not a matcher"})
    assert invalid.status_code == 422 and "is not name=value" in invalid.content.decode()


def test_rules_page(source, client_as):
    page = client_as("viewer").get("/monitoring/rules/").content.decode()
    assert "DemoSlowBurn" in page and "job:demo_requests:rate1m" in page and "rules.yml" in page


def test_pages_without_any_source_explain_what_to_do(client_as):
    page = client_as("admin").get("/monitoring/").content.decode()
    assert "No Prometheus source yet" in page and "/monitoring/sources/new/" in page
