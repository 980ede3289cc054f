"""Webhooks: target validation (SSRF), HMAC signing, retries with a delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from common.errors import DomainError
from common.models import AuditEvent
from governance import reviews, webhooks
from governance.models import Webhook, WebhookDelivery
from governance.tasks import deliver_webhook
from tests.governance.review_support import high_risk_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(personas):
    personas.owner.is_superuser = True
    personas.owner.save()
    return personas.owner


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_public_targets_are_refused(admin, url):
    with pytest.raises(DomainError) as excinfo:
        webhooks.webhook_create(actor=admin, name="x", url=url, events=["*"])
    assert excinfo.value.code == "webhook_target_refused"
    assert excinfo.value.details["setting"] == "WEBHOOK_ALLOW_PRIVATE"
    assert not Webhook.objects.exists()


def test_every_resolved_address_is_checked(admin, monkeypatch):
    answers = [(2, 1, 6, "", ("93.184.216.34", 443)), (2, 1, 6, "", ("10.0.0.5", 443))]
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(DomainError, match="10.0.0.5"):
        webhooks.validate_target("https://mixed.example/hook")


def test_only_administrators_manage_webhooks(personas, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(DomainError) as excinfo:
        webhooks.webhook_create(
            actor=personas.validator, name="x", url="http://127.0.0.1/", events=["*"]
        )
    assert excinfo.value.status == 403


class Receiver(BaseHTTPRequestHandler):
    statuses: list[int] = []
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(Receiver.statuses.pop(0) if Receiver.statuses else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.received, Receiver.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_review_events_are_delivered_signed_and_retried_with_a_log(
    admin, personas, settings, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    hook = webhooks.webhook_create(
        actor=admin, name="ci", url=receiver, events=["governance.review."]
    )
    assert AuditEvent.objects.filter(action="governance.webhook.created").exists()
    version = high_risk_version(personas)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reviews.review_submit(actor=personas.owner, version=version)
    for callback in callbacks:  # the event listener (not the broker sends)
        if getattr(callback, "__name__", "") == "deliver":
            callback()
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "governance.review.in_review"

    Receiver.statuses = [500]
    with django_capture_on_commit_callbacks(execute=False) as resend:
        deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("queued", 1, 500)
    assert "HTTP 500" in delivery.error and len(resend) == 1  # re-enqueued with backoff

    deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("succeeded", 2, 200)
    headers, body = Receiver.received[-1]
    expected = hmac.new(
        hook.secret.encode(),
        headers["x-modelgate-timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["x-modelgate-signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["event"] == "governance.review.in_review"
    assert payload["data"]["model"] == "credit" and payload["data"]["state"] == "in_review"


def test_a_target_refused_at_delivery_time_fails_without_retry(
    admin, settings, receiver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    hook = webhooks.webhook_create(actor=admin, name="ci", url=receiver, events=["*"])
    webhooks.on_event("registry.alias.set", {"model": "credit", "alias": "production"})
    settings.WEBHOOK_ALLOW_PRIVATE = False
    delivery = WebhookDelivery.objects.get(webhook=hook)
    deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "non-public" in delivery.error
    assert Receiver.received == []


def test_delivery_connects_to_the_checked_address_not_a_rebound_name(
    admin, settings, receiver, monkeypatch
):
    """DNS rebinding: the name answers a checked address, then an internal one."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    port = int(receiver.rsplit(":", 1)[1].split("/")[0])
    real = webhooks.socket.getaddrinfo
    lookups = []

    def rebinding(host, *args, **kwargs):
        if host != "hooks.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "10.255.255.1"  # second answer: internal
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(webhooks.socket, "getaddrinfo", rebinding)
    hook = webhooks.webhook_create(
        actor=admin, name="ci", url=f"http://hooks.example:{port}/hook", events=["*"]
    )
    lookups.clear()  # creation checked it; delivery checks once more, then connects to that
    webhooks.on_event("registry.alias.set", {"model": "credit", "alias": "production"})
    delivery = WebhookDelivery.objects.get(webhook=hook)
    deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status) == ("succeeded", 200)
    assert lookups == ["hooks.example"]  # looked up once, for the check
    headers, _ = Receiver.received[-1]
    assert headers["host"] == f"hooks.example:{port}"


class Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self):
        self.send_response(307)
        self.send_header("Location", Redirector.target)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirects_are_not_followed(admin, settings, receiver, django_capture_on_commit_callbacks):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    server = HTTPServer(("127.0.0.1", 0), Redirector)
    Redirector.target = receiver  # an "internal" address the redirect points at
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = webhooks.webhook_create(
            actor=admin, name="ci", url=f"http://127.0.0.1:{server.server_port}/", events=["*"]
        )
        webhooks.on_event("registry.alias.set", {"model": "credit", "alias": "production"})
        delivery = WebhookDelivery.objects.get(webhook=hook)
        with django_capture_on_commit_callbacks(execute=False):
            deliver_webhook(delivery.pk)
    finally:
        server.shutdown()
    delivery.refresh_from_db()
    assert delivery.response_status == 307 and "redirects are not followed" in delivery.error
    assert Receiver.received == []
