"""The monitoring operations, one module per area; importing this package
(the core autodiscovers `services`) registers them all."""

from . import alerting, config, dashboards, health, queries  # noqa: F401
