"""Fixtures of the accounts tests."""

import pytest

from apps.accounts import actors


@pytest.fixture
def clock(monkeypatch, settings):
    """The actor cache's clock, held still; `clock.pass_the_bound()` moves it by ACTOR_CACHE_SECONDS."""

    class Clock:
        now = 1000.0

        def pass_the_bound(self):
            self.now += settings.ACTOR_CACHE_SECONDS

    held = Clock()
    monkeypatch.setattr(actors, "clock", lambda: held.now)
    return held


@pytest.fixture
def window(monkeypatch):
    """django-ratelimit's clock (the views' limits: sign-in, OAuth endpoints), held still in a window of this test
    alone: no window ends between two requests of a test, whatever the real clock does."""
    import secrets
    from types import SimpleNamespace

    import django_ratelimit.core

    now = 1_700_000_000.0 + secrets.randbelow(10**7)
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now))
    return now
