"""Helpers for deployment and serving tests: a low-risk model, approvals, environments."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.test import Client

from common.jobs import job_claim
from governance import reviews
from lifecycle import deployments
from lifecycle.models import Deployment, Environment
from tests.conftest import classifier_bytes, create_model, grant, ready_version
from tests.governance.review_support import file_evidence, sign


def low_risk_model(personas: Any, name: str = "churn") -> Any:
    """A low-risk classifier (the owner alone approves) with the bot as contributor."""
    model = create_model(personas.owner, name=name, risk_tier="low", team=personas.team)
    grant(model, personas.bot, "contributor")
    grant(model, personas.viewer, "viewer")
    return model


def new_version(model: Any, personas: Any, seed: int = 0) -> Any:
    return ready_version(model, personas.bot, artifact=classifier_bytes(seed))


def approve(version: Any, personas: Any) -> Any:
    file_evidence(version, "evaluation_report")
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.owner, version, meaning="approved_for_deployment")
    review = version.review
    review.refresh_from_db()
    assert review.state == "approved", review.state
    return version


def environment(model: Any, name: str = "production", actor: Any = None) -> Environment:
    return deployments.environment_create(actor=actor or model.owner, model=model, name=name)


def run_deployment(deployment: Deployment) -> Deployment:
    """What the worker does, in-process."""
    with transaction.atomic():
        job = job_claim(Deployment, deployment.pk)
    assert job is not None
    return deployments.deployment_run(job=job, poll_seconds=0.05)


def deploy(environment: Environment, version: Any, actor: Any) -> Deployment:
    deployment = deployments.deployment_start(actor=actor, environment=environment, version=version)
    return run_deployment(deployment)


def fresh(environment: Environment) -> Environment:
    return Environment.objects.get(pk=environment.pk)


def browser(user: Any) -> Client:
    """A logged-in browser for the UI's views."""
    client = Client()
    client.force_login(user)
    return client
