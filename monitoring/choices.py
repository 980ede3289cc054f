from django.db import models


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE_ALERT_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# The one table of allowed alert transitions (alert_acknowledge / alert_resolve).
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.RESOLVED}),
    AlertStatus.RESOLVED: frozenset(),
}


class AlertKind(models.TextChoices):
    DRIFT = "drift", "Data drift"
    PERFORMANCE = "performance", "Performance drop"


class CheckKind(models.TextChoices):
    DRIFT = "drift", "Drift"
    PERFORMANCE = "performance", "Performance"
