"""Outgoing webhooks: target validation, HMAC-SHA256 signing, deliveries as jobs.

Each matching event becomes one ``WebhookDelivery`` row (the delivery log),
sent by ``governance.tasks.deliver_webhook`` and retried with exponential
backoff by ``common.jobs.job_fail``.

Signature: header ``X-ModelGate-Signature: sha256=<hex>`` where hex is
HMAC-SHA256(secret, "<timestamp>.<body>") and ``X-ModelGate-Timestamp`` holds
the timestamp (seconds since the epoch), so a receiver can refuse replays.

A delivery connects to an address checked by ``validate_target`` just before
(the name is not looked up again, so DNS rebinding cannot swap in an internal
address between check and connect; TLS still verifies the certificate against
the host name), and redirects are not followed (a 3xx is a failed attempt), so
a public target cannot bounce the request to an internal one.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
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
    addresses = validate_target(webhook.url)  # DNS may have changed since creation
    body = json.dumps(job.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-ModelGate-Event": job.event,
        "X-ModelGate-Delivery": str(job.pk),
        "X-ModelGate-Timestamp": timestamp,
        "X-ModelGate-Signature": sign(webhook.secret, timestamp, body),
    }
    status = _post_pinned(webhook.url, addresses, body, headers)
    WebhookDelivery.objects.filter(pk=job.pk).update(response_status=status)
    if 300 <= status < 400:
        raise DeliveryFailed(f"HTTP {status}: redirects are not followed")
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    with transaction.atomic():
        job_finish(job, log=f"HTTP {status}")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address``, whatever ``host`` resolves to now."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address``; the certificate is still checked against ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


def _post_pinned(url: str, addresses: list[str], body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    connection_class = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
    connection = connection_class(
        parts.hostname or "",
        parts.port or (443 if secure else 80),
        address=addresses[0],
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


class DeliveryFailed(Exception):
    pass
