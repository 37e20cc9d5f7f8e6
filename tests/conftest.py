"""Shared fixtures: users per role, the real console server and Celery worker as
subprocesses on the test database, and headless Chromium.

Tests that use `console_server` or `celery_worker` must use `transactional_db`:
the other processes only see committed rows.
"""

from __future__ import annotations

import itertools
import os
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts.actors import Actor
from apps.accounts.models import ApiToken

from .support import peers, processes

_names = itertools.count(1)


def pytest_sessionstart(session):
    """A process an earlier, killed run left behind may still hold the test database open:
    PostgreSQL would then refuse to drop and recreate it, and every test would error."""
    from django.db import connection

    if connection.vendor == "postgresql":
        processes.end_sessions_on(connection.creation._get_test_db_name())


def pytest_collection_modifyitems(items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in
    this thread once started, which async tests (websockets, MCP) cannot share."""
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(autouse=True)
def own_anchor_file(settings, tmp_path):
    """Each test verifies its audit chain against anchors of its own: the database is emptied between
    tests, and a worker of the run may have anchored an earlier test's head in the run's file
    (processes a test starts inherit its path through console_env)."""
    settings.AUDIT_CHECKPOINT_PATH = str(tmp_path / "anchors.jsonl")


@pytest.fixture
def make_user(db):
    """make_user("operator") -> a user with that role; `.raw_password` holds its password."""

    def make(*roles: str, username: str | None = None, **fields):
        username = username or f"{'-'.join(roles) or 'norole'}-{next(_names)}-{secrets.token_hex(2)}"
        password = secrets.token_urlsafe(12)
        user = get_user_model().objects.create_user(username=username, password=password, **fields)
        user.groups.set(Group.objects.filter(name__in=roles))
        user.raw_password = password
        return user

    return make


@pytest.fixture
def actor_of():
    def actor(user, token=None) -> Actor:
        return Actor.for_user(user, token)

    return actor


@pytest.fixture
def make_token(db):
    def make(user, scopes=None, **fields):
        scopes = scopes if scopes is not None else list(user.groups.values_list("name", flat=True))
        token, raw = ApiToken.issue(user, fields.pop("name", "test token"), scopes, **fields)
        return token, raw

    return make


@pytest.fixture
def client_as(client, make_user):
    """client_as("auditor") -> Django test client logged in as a new user of that role."""

    def login(*roles: str):
        user = make_user(*roles)
        client.force_login(user)
        client.user = user
        return client

    return login


@pytest.fixture(scope="session")
def console_server(django_db_setup, django_db_blocker):
    """The console's ASGI app (uvicorn) on a loopback port, on the test database."""
    with django_db_blocker.unblock():
        proc, url = processes.start_console()
    yield url
    proc.stop()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker consuming this run's queue, on the test database."""
    with django_db_blocker.unblock():
        proc = processes.start_worker()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`)."""
    path = peers.require_binary("chromium", "chromium-browser")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the Django ORM calls
    # the test itself makes stay synchronous and are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def login_page(page, console_server):
    """login_page(user) -> the Playwright page, logged in through the real login form."""

    def login(user):
        page.goto(console_server + "/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", user.raw_password)
        page.click("main button[type=submit]")
        page.wait_for_url(console_server + "/")
        return page

    return login
