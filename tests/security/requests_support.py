"""A seeded world for request-hardening tests: one model with a ready version and
every object an API path can name (dataset, monitor, check run, alert,
fairness audit), and a superuser whose requests get past 401/403/404 to the
body parsers and the services."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from governance import risk_tiers
from governance.fairness_audits import fairness_audit_start
from lifecycle import deployments
from monitoring import services as monitoring_services
from tests.conftest import Personas, create_model, grant, make_user, ready_version
from tests.monitoring.conftest import upload_training


@dataclass
class World:
    root: User
    model: Any
    version: Any
    dataset: Any
    monitor: Any
    alert: Any
    audit: Any
    tier_change: Any  # a pending request to lower the model's risk tier


def seed_world(personas: Personas) -> World:
    root = make_user("root", is_superuser=True, is_staff=True)
    model = create_model(personas.owner, team=personas.team)
    grant(model, personas.bot, "contributor")
    dataset = upload_training(model, personas.owner)
    version = ready_version(
        model,
        personas.owner,
        training_dataset=dataset,
        target_column="label",
        metrics={"accuracy": 0.9},
    )
    monitor = monitoring_services.monitor_create(
        actor=personas.owner, model=model, version=version, name="drift"
    )
    run, _ = monitoring_services.check_run_request(actor=personas.owner, monitor=monitor)
    alert, _ = monitoring_services.alert_raise(
        monitor=monitor, run=run, kind="data_drift", message="drifted", details={}
    )
    audit = fairness_audit_start(
        actor=personas.owner,
        version=version,
        dataset=dataset,
        target_column="label",
        sensitive_columns=["age"],
    )
    deployments.environment_create(actor=personas.owner, model=model, name="staging")
    tier_change = risk_tiers.risk_tier_change_request(
        actor=personas.owner, model=model, risk_tier="low", reason="seeded for the tests"
    )
    return World(root, model, version, dataset, monitor, alert, audit, tier_change)


def png_bytes() -> bytes:
    """A real 16x16 PNG: binary, not UTF-8, as a careless pipeline would send it.

    Its bytes hold no comma, so a CSV reader sees one column named by the
    invalid UTF-8 header line (with commas it fails earlier, on column counts).
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes((x + y * 13) % 256 for x in range(48)) for y in range(16))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    assert b"," not in png
    return png
