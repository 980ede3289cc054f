"""Demo state for per-prediction explanations, loaded by `manage.py demo` (idempotent).

After the monitors have logged traffic, the version each model serves in
``production`` (else its latest ready version) gets its logged predictions
explained: ten rows, each feature's contribution, on the version page.
"""

from __future__ import annotations

from typing import Any

from lifecycle import services
from lifecycle.models import Explanation
from lifecycle.tasks import heavy_explain

SAMPLE = 10


def _served(model: Any) -> Any:
    alias = model.aliases.filter(name="production").select_related("version").first()
    if alias is not None:
        return alias.version
    return model.versions.filter(status="ready").order_by("-number").first()


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    for model in models.values():
        version = _served(model)
        if version is None or Explanation.objects.filter(version=version).exists():
            continue
        job = services.explanation_start(
            actor=users["pipeline-bot"], version=version, sample_size=SAMPLE
        )
        # Run now, in this process: the worker may not be running yet (its copy then
        # finds the job done and does nothing).
        heavy_explain.run(job.pk)
        job.refresh_from_db()
        method = (job.result or {}).get("method", job.error or job.status)
        command.stdout.write(f"  explanations: {version}, {SAMPLE} rows ({method})")
