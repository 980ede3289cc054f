"""Outgoing webhooks and their delivery log."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import BackgroundJob, TimeStampedModel

__all__ = ["Webhook", "WebhookDelivery"]


class Webhook(TimeStampedModel):
    """An outgoing webhook; ``events`` are prefixes (``governance.review.``) or ``*``."""

    permission_root = ""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return any(p == "*" or event == p or event.startswith(p) for p in self.events)


class WebhookDelivery(BackgroundJob):
    """One event sent to one webhook: the delivery log, retried with backoff."""

    task_name = "governance.tasks.deliver_webhook"
    failure_handler = None

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    response_status = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook}"
