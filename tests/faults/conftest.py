"""Fault drills reuse the comms wire-format peers (Slack, Twilio, a webhook receiver)."""

from tests.comms.conftest import loopback_allowed, peer_servers, receiver, run_job, slack, twilio  # noqa: F401
