"""/agents/: how to connect an MCP client, and the tools the user's roles give it."""

import pytest


@pytest.mark.django_db
def test_agents_page_shows_the_endpoint_and_the_callers_tools(client_as, settings):
    page = client_as("viewer").get("/agents/").content.decode()
    assert settings.CONSOLE_BASE_URL.rstrip("/") + "/mcp" in page and "Bearer opc_" in page
    assert "core_health" in page and "core_purge_jobs" not in page

    page = client_as("operator").get("/agents/").content.decode()
    assert "core_purge_jobs" in page and "risky: may wait for approval" in page


@pytest.mark.django_db
def test_agents_page_needs_a_login(client):
    assert client.get("/agents/").status_code == 302
