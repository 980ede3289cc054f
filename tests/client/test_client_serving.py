"""The client's deploy and predict, and its reads, against real processes: gunicorn
serving ``config.wsgi`` (the API), a gunicorn serving process (config/gunicorn_serve.py,
on its own port, as in production) and a real Celery worker that warms and replays.

A pipeline deploys v1 directly and predicts through the serving endpoint (the same
answers as the estimator in hand); it starts a canary of v2, sees both versions answer
while the canary holds half the traffic, promotes it and sees v2 alone; it reads what
happened (versions, aliases, review, alerts, runs, environments, deployments, the
timeline); and the same from the shell (``modelgate status``, ``modelgate deploy``).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import skops.io as sio

from common.auth import token_issue
from lifecycle.models import ServingProcess
from tests.client.test_client import cli
from tests.conftest import FEATURES, ROOT, classifier_bytes, grant, training_frame, wait_for
from tests.integration.test_serving_processes import warmed_everywhere
from tests.lifecycle.deploy_support import approve, environment, low_risk_model, new_version

sys.path.insert(0, str(ROOT / "client"))

from modelgate import ModelGate, ModelGateError

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def churn(personas):
    """A low-risk model with three approved versions and two environments; the
    pipeline bot may register, deploy and call the serving endpoint."""
    model = low_risk_model(personas)
    versions = [approve(new_version(model, personas, seed=s), personas) for s in range(3)]
    environment(model, "production")
    environment(model, "staging")
    grant(model, personas.bot, "deployer")
    grant(model, personas.bot, "serving")
    return model, versions


@pytest.fixture
def processes(real_processes, celery_worker):
    web = real_processes.web()
    serve = real_processes.serve(workers=1)
    wait_for(lambda: ServingProcess.objects.exists(), timeout=30, message="serving heartbeat")
    return f"http://127.0.0.1:{web.port}", f"http://127.0.0.1:{serve.port}"


def answers_with(gate: ModelGate, number: int) -> None:
    """Wait until the serving process answers with ``number`` alone: it picks a switch
    up at its next poll of the routing (0.2 s here; longer on a busy machine)."""

    def only() -> bool:
        try:
            return all(
                gate.predict("churn", "production", training_frame(1)[FEATURES], details=True)[
                    "version"
                ]
                == number
                for _ in range(5)
            )
        except ModelGateError:
            return False

    wait_for(only, timeout=20, message=f"v{number} alone")


def test_a_pipeline_deploys_directly_and_by_canary_and_predicts_through_the_client(
    churn, processes, personas
):
    _model, (_v1, v2, _v3) = churn
    api_url, serve_url = processes
    token, _ = token_issue(user=personas.bot, reason="client test")
    bot = ModelGate(api_url, token, serve_url=serve_url)
    rows = training_frame(40, seed=5)[FEATURES]
    expected = {
        n: sio.loads(classifier_bytes(n - 1)).predict(rows).tolist() for n in (1, 2)
    }  # what each version answers, computed here with the estimator in hand
    assert expected[1] != expected[2]

    # Direct: the worker warms the serving process, then switches.
    done = bot.deploy("churn", "production", 1, wait=True, wait_timeout=120)
    assert (done["strategy"], done["state"], done["version"]) == ("direct", "succeeded", 1)
    assert done["warm_report"]["note"] == "1 serving process(es) warmed"
    answers_with(bot, 1)
    assert bot.predict("churn", "production", rows) == expected[1]
    answer = bot.predict("churn", "production", rows.head(3), details=True, request_id="ci-1")
    assert (answer["version"], answer["request_id"]) == (1, "ci-1")
    assert np.allclose(np.sum(answer["probabilities"], axis=1), 1.0)

    # Canary: replay first, then half the requests (by request id) to v2.
    canary = bot.deploy(
        "churn",
        "production",
        2,
        strategy="canary",
        steps=[50, 100],
        step_seconds=600,  # held: the test promotes it, no beat sweep decides
        wait=True,
        wait_for=("progressing", "failed", "rolled_back"),
        wait_timeout=120,
    )
    assert canary["state"] == "progressing", canary["reason"]
    assert wait_for(lambda: warmed_everywhere(v2.pk, 1), timeout=30, message="v2 warm")
    # The serving process routes by the split from its next routing poll on: until then
    # every request is stable's, and a retry after it could move (seen once).
    wait_for(
        lambda: bot.predict("churn", "production", rows.head(1), details=True)["version"] == 2,
        timeout=20,
        message="the split routed",
    )
    seen = {}
    for i in range(40):
        one = rows.iloc[[i]]
        answer = bot.predict("churn", "production", one, details=True, request_id=f"c-{i}")
        seen[f"c-{i}"] = answer["version"]
        assert answer["predictions"] == [expected[answer["version"]][i]]
    assert set(seen.values()) == {1, 2}, seen
    # A retry keeps its version (routing by request id).
    again = bot.predict("churn", "production", rows.iloc[[7]], details=True, request_id="c-7")
    assert again["version"] == seen["c-7"]

    promoted = bot.deployment_action(
        "churn", "production", canary["id"], "promote", reason="CI: canary looks fine"
    )
    assert promoted["id"] == canary["id"]
    final = bot.wait_for_deployment("churn", "production", canary["id"], timeout=60)
    assert final["state"] == "succeeded", final["reason"]
    answers_with(bot, 2)
    assert bot.predict("churn", "production", rows) == expected[2]

    # A refusal is the server's code in a typed error, and nothing changed.
    with pytest.raises(ModelGateError) as bad_plan:
        bot.deploy("churn", "production", 3, steps=[50, 100])
    assert (bad_plan.value.status, bad_plan.value.code) == (400, "invalid")
    viewer = ModelGate(api_url, token_issue(user=personas.viewer, reason="t")[0])
    with pytest.raises(ModelGateError) as denied:
        viewer.deploy("churn", "production", 3)
    assert (denied.value.status, denied.value.code) == (403, "permission_denied")
    with pytest.raises(ModelGateError) as no_serving_right:
        ModelGate(
            api_url, viewer.session.headers["Authorization"][6:], serve_url=serve_url
        ).predict("churn", "production", rows)
    # Without the serve right the endpoint does not say the environment exists.
    assert (no_serving_right.value.status, no_serving_right.value.code) == (404, "not_found")

    # The reads a pipeline or a dashboard needs.
    assert [v["number"] for v in bot.versions("churn")] == [3, 2, 1]
    aliases = {a["name"]: a["version"] for a in bot.aliases("churn")}
    assert aliases["production"] == 2
    assert bot.review("churn", 2)["state"] == "approved"
    assert bot.alerts("churn") == [] and bot.alerts("churn", status="open") == []
    assert bot.runs("churn") == []
    deployments = bot.deployments("churn", "production")
    assert [(d["id"], d["strategy"], d["state"]) for d in deployments] == [
        (canary["id"], "canary", "succeeded"),
        (done["id"], "direct", "succeeded"),
    ]
    production = {e["name"]: e for e in bot.environments("churn")}["production"]
    assert production["phase"] == "idle"
    kinds = [e["kind"] for e in bot.timeline("churn")]
    assert kinds[0] == "deployment" and {"version", "review", "signoff"} <= set(kinds)
    assert [e["id"] for e in bot.timeline("churn", kinds=["deployment"])] == [
        canary["id"],
        done["id"],
    ]

    # The same from a shell pipeline.
    env = {"MODELGATE_URL": api_url, "MODELGATE_TOKEN": token}
    status = cli(["status", "churn"], env)
    assert status.returncode == 0, status.stderr
    picture = json.loads(status.stdout)
    assert [v["number"] for v in picture["versions"]] == [3, 2, 1]
    assert picture["alerts"] == [] and picture["runs"] == []
    assert {e["name"] for e in picture["environments"]} == {"production", "staging"}
    deployed = cli(["deploy", "churn", "staging", "3", "--wait", "--timeout", "120"], env)
    assert deployed.returncode == 0, deployed.stderr
    assert (json.loads(deployed.stdout)["state"], json.loads(deployed.stdout)["version"]) == (
        "succeeded",
        3,
    )
    started = cli(
        ["deploy", "churn", "production", "3", "--strategy", "canary", "--steps", "25,100",
         "--step-seconds", "600"],
        env,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["strategy"] == "canary"
    second = cli(["deploy", "churn", "production", "1"], env)
    assert second.returncode == 1
    assert second.stderr.startswith("error deployment_in_progress:"), second.stderr
    steps = json.loads(cli(["timeline", "churn", "--kind", "deployment"], env).stdout)
    assert [(e["kind"], e["version"]) for e in steps[:2]] == [("deployment", 3)] * 2
    assert {e["kind"] for e in steps} == {"deployment"} and len(steps) == 4
    bad_kind = cli(["timeline", "churn", "--kind", "deploys"], env)
    assert bad_kind.returncode == 1 and bad_kind.stderr.startswith("error invalid:")
    refused = cli(["deploy", "churn", "production", "1"], {**env, "MODELGATE_TOKEN": "nope"})
    assert refused.returncode == 1 and refused.stderr.startswith("error "), refused.stderr
    assert refused.stdout == ""


def test_the_clients_dependencies_are_few_and_pinned_as_the_server_tests_them():
    import re
    import tomllib

    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    pins = dict(dep.split("==") for dep in project["dependencies"])
    assert set(pins) == {"requests", "skops", "pandas", "pyarrow"}
    tested = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
                tested[match.group(1).lower()] = match.group(2)
    assert pins == {name: tested[name] for name in pins}
