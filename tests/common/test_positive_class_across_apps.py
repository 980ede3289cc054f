"""One positive class across the apps: an evaluation, a monitor's performance check and a
fairness audit of the same model score the same class, ``classes_[1]`` of the version,
and equal scikit-learn's ``pos_label=classes_[1]``, whatever the labels' type."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import skops.io as sio
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from common.jobs import job_claim
from governance.fairness_audits import fairness_audit_start
from governance.models import FairnessAudit
from governance.tasks import heavy_fairness_audit
from lifecycle.models import Evaluation
from lifecycle.services import evaluation_start
from lifecycle.tasks import heavy_evaluate
from monitoring import checks
from monitoring import services as monitoring
from monitoring.models import CheckRun
from registry.models import ModelVersion
from tests.conftest import FEATURES, SIGNATURE, ready_version
from tests.evidence_support import audit_frame, upload

pytestmark = pytest.mark.django_db

N = 1500
WINDOW_END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)

# (classes, how a pipeline posts the labels to the monitor)
CASES = {
    "integers 2 and 10": ([2, 10], None),
    "integers 2 and 10, labels posted as text": ([2, 10], str),
    "integers 1 and 2": ([1, 2], None),
    "strings no and yes": (["no", "yes"], None),
    "booleans": ([False, True], None),
}


def data_with(classes: list[Any]) -> pd.DataFrame:
    frame = audit_frame(N, seed=11)
    frame["label"] = np.where(frame["label"].to_numpy() == 1, classes[1], classes[0])
    return frame


def fitted(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=300).fit(frame[FEATURES], frame["label"])


def evaluate(version: ModelVersion, dataset: Any, actor: Any) -> dict[str, Any]:
    job = evaluation_start(actor=actor, version=version, dataset=dataset, target_column="label")
    heavy_evaluate.run(job.pk)
    job = Evaluation.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.error
    return job.report


def audit(version: ModelVersion, dataset: Any, actor: Any) -> dict[str, Any]:
    job = fairness_audit_start(
        actor=actor,
        version=version,
        dataset=dataset,
        target_column="label",
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(job.pk)
    job = FairnessAudit.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.error
    return job.report


def monitor_check(
    version: ModelVersion, personas: Any, frame: pd.DataFrame, estimator: Any, post_as: Any
) -> dict[str, Any]:
    """A performance check over the model's predictions on ``frame`` and their labels."""
    actor = personas.bot
    monitor = monitoring.monitor_create(
        actor=personas.owner,
        model=version.registered_model,
        version=version,
        name="performance",
        checks=["performance"],
        min_rows=50,
    )
    ids = [f"r{i}" for i in range(len(frame))]
    batch = frame[FEATURES].assign(
        request_id=ids,
        timestamp=pd.date_range("2026-01-01T00:00:00", periods=len(frame), freq="s", tz="UTC"),
        prediction=estimator.predict(frame[FEATURES]),
        probability=estimator.predict_proba(frame[FEATURES])[:, 1],
    )
    monitoring.prediction_batch_ingest(
        actor=actor, version=version, batch_id="p", table=pa.Table.from_pandas(batch)
    )
    truth = frame["label"].map(post_as) if post_as else frame["label"]
    labels = pd.DataFrame({"request_id": ids, "label": truth.to_numpy()})
    monitoring.label_batch_ingest(
        actor=actor,
        model=version.registered_model,
        batch_id="l",
        table=pa.Table.from_pandas(labels, preserve_index=False),
    )
    run, _ = monitoring.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=WINDOW_END
    )
    job = job_claim(CheckRun, run.pk)
    assert job is not None
    run = checks.check_run_execute(job=job)
    assert run.metrics["status"] == "ok", run.metrics
    return run.metrics


@pytest.mark.parametrize("case", list(CASES))
def test_an_evaluation_a_monitor_and_a_fairness_audit_score_the_versions_positive_class(
    case: str, model: Any, personas: Any
) -> None:
    classes, post_as = CASES[case]
    frame = data_with(classes)
    estimator = fitted(frame)
    assert estimator.classes_.tolist() == classes
    version = ready_version(model, personas.bot, artifact=sio.dumps(estimator))
    recorded = version.signature["output"]["classes"]  # at validation, types kept
    assert list(map(repr, recorded)) == list(map(repr, classes))
    dataset = upload(model, personas.bot, frame)

    y, predicted = frame["label"], estimator.predict(frame[FEATURES])
    score = estimator.predict_proba(frame[FEATURES])[:, 1]
    pos, neg = classes[1], classes[0]
    expected = {
        "precision": skm.precision_score(y, predicted, pos_label=pos),
        "recall": skm.recall_score(y, predicted, pos_label=pos),
        "roc_auc": skm.roc_auc_score(y == pos, score),
    }
    # The test can tell the classes apart: the other class scores differently.
    assert skm.precision_score(y, predicted, pos_label=neg) != pytest.approx(
        expected["precision"], abs=1e-3
    )
    assert skm.recall_score(y, predicted, pos_label=neg) != pytest.approx(
        expected["recall"], abs=1e-3
    )

    evaluation = evaluate(version, dataset, personas.bot)
    fairness = audit(version, dataset, personas.bot)
    performance = monitor_check(version, personas, frame, estimator, post_as)
    found = {
        "evaluation": evaluation["metrics"],
        "monitor": performance["values"],
        "fairness audit": {
            "precision": fairness["overall"]["metrics"]["precision"],
            "recall": fairness["overall"]["metrics"]["tpr"],
            "roc_auc": fairness["overall"]["metrics"]["roc_auc"],
        },
    }
    for where, values in found.items():
        for name, value in expected.items():
            assert values[name] == pytest.approx(value, abs=1e-9), (where, name)
    # Each names the class it scored, as the version's own (True, not 1).
    named = [evaluation["positive_class"], fairness["pos_label"], performance["positive_class"]]
    assert list(map(repr, named)) == [repr(pos)] * 3


def test_a_version_validated_without_recorded_classes_falls_back_to_its_estimator(
    model: Any, personas: Any
) -> None:
    """Versions validated before classes were required: evaluations and audits load
    the model and use its ``classes_``; a monitor (no model loaded) leaves the
    class-dependent metrics undefined rather than guessing from the labels."""
    classes = [2, 10]
    frame = data_with(classes)
    estimator = fitted(frame)
    version = ready_version(model, personas.bot, artifact=sio.dumps(estimator))
    ModelVersion.objects.filter(pk=version.pk).update(
        signature={"inputs": SIGNATURE, "output": {"kind": "label"}}
    )
    version = ModelVersion.objects.get(pk=version.pk)
    assert version.classes is None
    dataset = upload(model, personas.bot, frame)
    y, predicted = frame["label"], estimator.predict(frame[FEATURES])
    precision = skm.precision_score(y, predicted, pos_label=10)

    evaluation = evaluate(version, dataset, personas.bot)
    assert evaluation["positive_class"] == 10
    assert evaluation["metrics"]["precision"] == pytest.approx(precision)
    fairness = audit(version, dataset, personas.bot)
    assert fairness["pos_label"] == 10
    assert fairness["overall"]["metrics"]["precision"] == pytest.approx(precision)
    performance = monitor_check(version, personas, frame, estimator, None)
    assert performance["positive_class"] is None
    assert performance["values"]["precision"] is None
    assert performance["values"]["accuracy"] == pytest.approx(skm.accuracy_score(y, predicted))
