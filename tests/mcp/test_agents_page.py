"""/agents/: how to connect an MCP client, and the tools the user's roles give it."""

import pytest


@pytest.mark.django_db
def test_agents_page_shows_the_endpoint_and_the_callers_tools(client_as, settings):
    viewer = client_as("viewer")
    page = viewer.get("/agents/").content.decode()
    assert settings.CONSOLE_BASE_URL.rstrip("/") + "/mcp" in page and "Bearer opc_" in page
    assert 'href="/agents/tools/core/"' in page and "core_health" not in page  # a summary: one line per app
    detail = viewer.get("/agents/tools/core/").content.decode()
    assert "core_health" in detail and "core_purge_jobs" not in detail

    operator = client_as("operator")
    assert "core_purge_jobs" in operator.get("/agents/tools/core/").content.decode()
    assert "risky: may wait for approval" in operator.get("/agents/tools/core/").content.decode()
    assert viewer.get("/agents/tools/nosuchapp/").status_code == 404


@pytest.mark.django_db
def test_agents_page_needs_a_login(client):
    assert client.get("/agents/").status_code == 302
