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
