"""Demo state for environments and serving, loaded by `manage.py demo` (idempotent).

Each demo model gets ``staging`` and ``production`` environments (an existing
alias of that name becomes the environment's stable version). ``production``
is protected: it gets the model's approved version if it has one (the
governance demo approves ``diabetes-progression`` v2 and points
``@production`` at it; ``credit-default`` has no approved version, its
fairness audit fails). An empty ``staging`` gets the latest ready version.
The pipeline account gets the ``serving`` role, so that its token can call
``POST /serve/{model}/{environment}/invocations`` right after ``make run``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from common.audit import SystemActor
from common.errors import DomainError
from common.jobs import job_claim
from lifecycle import deployments, selectors
from lifecycle.models import Deployment, Environment
from registry import services as registry_services
from registry.choices import VersionStatus

DEMO = SystemActor("demo")
ENVIRONMENTS = ("staging", "production")


def _deploy_now(command: Any, owner: Any, environment: Environment, version: Any) -> None:
    """Deploy in-process (the worker may not run yet; no serving process is alive)."""
    deployment = deployments.deployment_start(actor=owner, environment=environment, version=version)
    with transaction.atomic():
        job = job_claim(Deployment, deployment.pk)
    if job is not None:
        deployment = deployments.deployment_run(job=job)
    command.stdout.write(f"  serving: {version} to {environment.name}: {deployment.state}")


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    owner = users["owner"]
    for model in models.values():
        registry_services.registered_model_grant(
            actor=DEMO, model=model, role="serving", user=users["pipeline-bot"]
        )
        for name in ENVIRONMENTS:
            environment = Environment.objects.filter(registered_model=model, name=name).first()
            if environment is None:
                environment = deployments.environment_create(actor=DEMO, model=model, name=name)
            if environment.stable_version_id is not None or environment.phase != "idle":
                continue
            if environment.protected:
                candidates = selectors.deployable_versions(actor=owner, environment=environment)
            else:
                candidates = list(
                    model.versions.filter(status=VersionStatus.READY).order_by("-number")[:1]
                )
            if not candidates:
                command.stdout.write(
                    f"  serving: nothing approved for {model.name}/{name}; it stays empty"
                )
                continue
            try:
                _deploy_now(command, owner, environment, candidates[0])
            except DomainError as exc:
                command.stdout.write(f"  serving: {model.name}/{name} not deployed: {exc.message}")
    command.stdout.write(
        f"  serving: POST {settings.SERVE_URL}/serve/<model>/<environment>/invocations "
        "with a pipeline-bot token (manage.py issue_token pipeline-bot)"
    )
