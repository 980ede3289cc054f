"""The Python client (``client/modelgate``) against the real server: gunicorn serving
``config.wsgi`` over HTTP and a real Celery worker, on the test database.

What a pipeline does: register a fitted estimator with its training frame and wait
for the worker's validation; load ``model@alias`` back, checked by digest and by
skops' trusted types; ask for a retrain; read the runs; and the same from the
command line. Refusals arrive as typed errors with the server's code and message.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from common.auth import token_issue
from tests.conftest import FEATURES, ROOT, training_frame

sys.path.insert(0, str(ROOT / "client"))

from modelgate import ModelGate, ModelGateError, Timeout, UntrustedArtifact

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(real_processes, celery_worker):
    return f"http://127.0.0.1:{real_processes.web().port}"


def gate_for(server: str, user) -> ModelGate:
    token, _ = token_issue(user=user, reason="client test")
    return ModelGate(server, token)


def fitted():
    frame = training_frame(300, seed=2)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(frame[FEATURES], frame["label"]), frame


def test_a_pipeline_registers_loads_and_retrains_through_the_client(
    server, model, personas, monkeypatch
):
    estimator, frame = fitted()
    bot = gate_for(server, personas.bot)
    version = bot.register(
        estimator,
        model="credit",
        training_data=frame,
        target="label",
        metrics={"accuracy": 0.9},
        source={"run_id": "ci-42", "commit": "abc1234"},
        wait_timeout=120,
    )
    assert version["status"] == "ready", version["status_reason"]
    assert version["number"] == 1 and version["metrics"] == {"accuracy": 0.9}
    assert version["training_dataset"]["name"] == "credit-training"
    assert version["source"]["run_id"] == "ci-42"
    assert [c["name"] for c in version["signature"]["inputs"]] == FEATURES

    # Loaded back: the same predictions, the digest checked.
    loaded = bot.load("credit@1")
    np.testing.assert_array_equal(
        loaded.predict(frame[FEATURES]), estimator.predict(frame[FEATURES])
    )
    owner = gate_for(server, personas.owner)
    owner.request("PUT", "models/credit/aliases/staging", json={"version": 1})
    assert bot.resolve("credit@staging")["number"] == 1
    assert type(bot.load("credit@staging")).__name__ == "Pipeline"

    # Production traffic and, later, its labels: joined by request id.
    rows = frame[FEATURES].head(50).copy()
    rows["timestamp"] = pd.date_range("2026-01-01", periods=50, freq="min", tz="UTC")
    rows["prediction"] = estimator.predict(rows[FEATURES])
    ids = [f"req-{i}" for i in range(50)]
    batch = bot.log_predictions("credit", 1, rows, batch_id="day-1", request_ids=ids)
    assert (batch["batch_id"], batch["row_count"], batch["version"]) == ("day-1", 50, 1)
    labels = pd.DataFrame({"request_id": ids, "label": frame["label"].head(50).tolist()})
    assert bot.log_labels("credit", labels, batch_id="labels-1")["row_count"] == 50
    with pytest.raises(ModelGateError) as bad_batch:
        bot.log_predictions("credit", 1, rows.drop(columns=["income"]), batch_id="day-2")
    assert bad_batch.value.status == 400 and "income" in bad_batch.value.message

    # A retrain asked for by the pipeline: 202 with the run, then readable.
    run = bot.retrain("credit", reason="new data from CI")
    assert (run["trigger"], run["strategy"], run["reason"]) == (
        "request",
        "refit",
        "new data from CI",
    )
    assert [r["id"] for r in bot.runs("credit")] == [run["id"]]
    # A second request while it is active: the server's code, in a typed error.
    with pytest.raises(ModelGateError) as refused:
        bot.retrain("credit")
    assert (refused.value.code, refused.value.status) == ("run_active", 409)
    assert "wait for it to finish" in refused.value.message

    # The same from a shell pipeline: the command line on the same functions.
    token, _ = token_issue(user=personas.bot, reason="client test")
    env = {"MODELGATE_URL": server, "MODELGATE_TOKEN": token}
    status = cli(["status", "credit"], env)
    assert status.returncode == 0, status.stderr
    answer = json.loads(status.stdout)
    assert 1 in [v["number"] for v in answer["versions"]]  # (v2: the worker ran the run)
    assert answer["runs"][0]["id"] == run["id"]
    missing = cli(["status", "no-such-model"], env)
    assert missing.returncode == 1 and missing.stderr.startswith("error not_found:")


def cli(args: list[str], env: dict[str, str], cwd: Path | None = None):
    import os

    return subprocess.run(
        [sys.executable, "-m", "modelgate", *args],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT / "client")},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_the_command_line_registers_a_saved_artifact_and_downloads_it_checked(
    server, model, personas, tmp_path
):
    estimator, _ = fitted()
    artifact = tmp_path / "model.skops"
    sio.dump(estimator, artifact)
    token, _ = token_issue(user=personas.bot, reason="client test")
    env = {"MODELGATE_URL": server, "MODELGATE_TOKEN": token}
    done = cli(
        ["register", "credit", str(artifact), "--metrics", '{"f1": 0.5}', "--run-id", "sh-1"], env
    )
    assert done.returncode == 0, done.stderr
    version = json.loads(done.stdout)
    assert (version["number"], version["status"]) == (1, "ready")
    assert version["metrics"] == {"f1": 0.5}
    out = tmp_path / "back.skops"
    got = cli(["download", "credit@1", "-o", str(out)], env)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == artifact.read_bytes()
    bad = cli(["register", "credit", str(artifact), "--metrics", "[1"], env)
    assert bad.returncode == 1 and "metrics" in bad.stderr


def test_refusals_are_typed_errors_with_the_servers_code(server, model, personas):
    estimator, _ = fitted()
    viewer = gate_for(server, personas.viewer)
    with pytest.raises(ModelGateError) as denied:
        viewer.register(estimator, model="credit")
    assert denied.value.status == 403 and denied.value.code == "permission_denied"
    outsider = gate_for(server, personas.outsider)
    with pytest.raises(ModelGateError) as hidden:
        outsider.versions("credit")
    assert (hidden.value.status, hidden.value.code) == (404, "not_found")
    with pytest.raises(ModelGateError) as unauthenticated:
        ModelGate(server, "not-a-token").versions("credit")
    assert unauthenticated.value.status == 401
    with pytest.raises(ModelGateError) as no_token:
        ModelGate(server, "")
    assert no_token.value.code == "no_token"

    # Not waiting long enough is a Timeout; the version is still registered.
    bot = gate_for(server, personas.bot)
    pending = bot.register(estimator, model="credit", wait=False)
    assert pending["status"] == "pending"
    with pytest.raises(Timeout):
        bot.wait_for_version("credit", pending["number"], timeout=0)
    assert bot.wait_for_version("credit", pending["number"], timeout=120)["status"] == "ready"


def test_load_refuses_types_skops_does_not_trust_and_a_wrong_digest(
    server, model, personas, monkeypatch
):
    from governance.estimators import mitigated_estimator
    from tests.evidence_support import audit_frame

    frame = audit_frame(600)
    base = LogisticRegression(max_iter=300).fit(frame[FEATURES], frame["label"])
    candidate = mitigated_estimator(
        base,
        frame,
        features=FEATURES,
        target="label",
        sensitive=["sex"],
        method="threshold_optimizer",
        constraint="demographic_parity",
        random_state=0,
    )
    bot = gate_for(server, personas.bot)
    version = bot.register(candidate, model="credit", wait_timeout=120)
    assert version["status"] == "ready", version["status_reason"]
    with pytest.raises(UntrustedArtifact) as untrusted:
        bot.load("credit@1")
    assert "governance.estimators.GroupThresholdClassifier" in untrusted.value.details["types"]
    types = untrusted.value.details["types"]
    assert bot.load("credit@1", trusted=types).predict(frame).shape == (600,)

    real = bot.request

    def tampered(method, path, **kwargs):
        answer = real(method, path, **kwargs)
        return answer + b"x" if isinstance(answer, bytes) else answer

    monkeypatch.setattr(bot, "request", tampered)
    with pytest.raises(ModelGateError) as mismatch:
        bot.load("credit@1", trusted=types)
    assert mismatch.value.code == "digest_mismatch"


def test_the_client_imports_no_modelgate_app():
    apps = {"common", "registry", "governance", "monitoring", "lifecycle", "demo", "config"}
    for path in (ROOT / "client" / "modelgate").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in getattr(node, "names", [])
        }
        assert not {n.split(".")[0] for n in names} & apps, path
