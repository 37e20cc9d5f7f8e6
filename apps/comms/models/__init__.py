from .config import AllowedNetwork, Connector, DeliveryPreference, EscalationPolicy, InhibitRule, RoutingRule, Target
from .events import Alert, Delivery, Incident, StatusMessage, TimelineEntry

__all__ = [
    "Alert",
    "AllowedNetwork",
    "Connector",
    "Delivery",
    "DeliveryPreference",
    "EscalationPolicy",
    "Incident",
    "InhibitRule",
    "RoutingRule",
    "StatusMessage",
    "Target",
    "TimelineEntry",
]
