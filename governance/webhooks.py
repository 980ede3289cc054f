"""Outgoing webhooks: target validation, HMAC-SHA256 signing, deliveries as jobs.

Each matching event becomes one ``WebhookDelivery`` row (the delivery log),
sent by ``governance.tasks.deliver_webhook`` and retried with exponential
backoff by ``common.jobs.job_fail``.

Signature: header ``X-ModelGate-Signature: sha256=<hex>`` where hex is
HMAC-SHA256(secret, "<timestamp>.<body>") and ``X-ModelGate-Timestamp`` holds
the timestamp (seconds since the epoch), so a receiver can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from common.audit import SystemActor, audit_record
from common.errors import DomainError
from common.jobs import job_enqueue, job_finish
from governance.models import Webhook, WebhookDelivery

logger = logging.getLogger(__name__)
FORWARDED_PREFIXES = (
    "governance.review.",
    "governance.signoff.",
    "registry.alias.",
    "monitoring.alert.",
)


def validate_target(url: str) -> list[str]:
    """Resolve the host and refuse loopback/link-local/private/reserved addresses.

    Every resolved address is checked (a name may resolve to a public and a
    private one). Returns the addresses. WEBHOOK_ALLOW_PRIVATE lifts the rule.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError("invalid_webhook_url", "A webhook URL is http(s)://host/...")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise DomainError(
            "invalid_webhook_url", f"{parts.hostname} does not resolve.", details={"url": url}
        ) from None
    addresses = sorted({info[4][0] for info in infos})
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return addresses
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%")[0])
        if (
            address.is_loopback
            or address.is_link_local
            or address.is_private
            or address.is_reserved
            or address.is_multicast
            or address.is_unspecified
        ):
            raise DomainError(
                "webhook_target_refused",
                f"{parts.hostname} resolves to {address}, a non-public address.",
                details={"url": url, "address": str(address), "setting": "WEBHOOK_ALLOW_PRIVATE"},
            )
    return addresses


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


@transaction.atomic
def webhook_create(*, actor: Any, name: str, url: str, events: list[str]) -> Webhook:
    if not (isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False)):
        raise DomainError("permission_denied", "Only administrators manage webhooks.", status=403)
    validate_target(url)
    webhook = Webhook.objects.create(
        name=name,
        url=url,
        events=list(events) or ["*"],
        secret=secrets.token_hex(32),
        created_by=None if isinstance(actor, SystemActor) else actor,
    )
    audit_record(
        actor=actor,
        action="governance.webhook.created",
        obj=webhook,
        after={"name": name, "url": url, "events": webhook.events},
    )
    return webhook


@transaction.atomic
def webhook_delete(*, actor: Any, webhook: Webhook) -> None:
    if not (isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False)):
        raise DomainError("permission_denied", "Only administrators manage webhooks.", status=403)
    before = {"name": webhook.name, "url": webhook.url}
    pk = webhook.pk
    webhook.active = False
    webhook.save(update_fields=["active"])
    audit_record(
        actor=actor,
        action="governance.webhook.deactivated",
        object_type="governance.webhook",
        object_id=str(pk),
        object_repr=before["name"],
        before=before,
    )


def on_event(name: str, payload: dict[str, Any]) -> None:
    """Event listener (after commit): queue one delivery per interested webhook."""
    if not name.startswith(FORWARDED_PREFIXES):
        return
    with transaction.atomic():
        for webhook in Webhook.objects.filter(active=True):
            if webhook.wants(name):
                delivery = WebhookDelivery.objects.create(
                    webhook=webhook, event=name, payload={"event": name, "data": payload}
                )
                job_enqueue(delivery)


def delivery_send(*, job: WebhookDelivery) -> None:
    """POST the payload; a non-2xx answer or a network error raises (the task retries)."""
    webhook = job.webhook
    validate_target(webhook.url)  # DNS may have changed since the webhook was created
    body = json.dumps(job.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - scheme checked in validate_target
        webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-ModelGate-Event": job.event,
            "X-ModelGate-Delivery": str(job.pk),
            "X-ModelGate-Timestamp": timestamp,
            "X-ModelGate-Signature": sign(webhook.secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as answer:  # noqa: S310
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    WebhookDelivery.objects.filter(pk=job.pk).update(response_status=status)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    with transaction.atomic():
        job_finish(job, log=f"HTTP {status}")


class DeliveryFailed(Exception):
    pass
