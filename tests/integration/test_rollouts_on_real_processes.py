"""Rollouts on real processes: gunicorn serving processes (config/gunicorn_serve.py), a
real Celery worker and a real Celery beat (the rollout controller's sweep every second),
under a bounded concurrent load on 127.0.0.1 whose rows vary, so that the predictions do.

Each test is bounded: its load stops after a fixed time or when told.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from lifecycle import deployments
from lifecycle.models import Deployment, EnvironmentTransition, RolloutAnalysis
from tests.conftest import wait_for
from tests.integration.test_serving_processes import (
    PATH,
    served,  # noqa: F401 - the fixture
    warmed_everywhere,
)
from tests.lifecycle.deploy_support import approve, fresh
from tests.lifecycle.rollout_support import rows
from tests.processes import stop

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

BODIES = [json.dumps({"inputs": [row]}) for row in rows(400, seed=11).values.tolist()]
TERMINAL = ("succeeded", "failed", "rolled_back", "aborted")


@dataclass
class VariedLoad:
    port: int
    token: str
    clients: int = 3
    limit_seconds: float = 300  # a bound, never reached when the test goes well
    results: list[tuple[float, int, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self, n: int) -> None:
        deadline = time.monotonic() + self.limit_seconds
        connection = None
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            i += 1
            try:
                connection = connection or http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=10
                )
                connection.request(
                    "POST",
                    PATH,
                    body=BODIES[(n * 7919 + i) % len(BODIES)],
                    headers={
                        "Authorization": f"Token {self.token}",
                        "Content-Type": "application/json",
                        "X-Request-ID": f"load-{n}-{i}",
                    },
                )
                response = connection.getresponse()
                response.read()
                status, version = response.status, response.getheader("X-Model-Version")
            except (OSError, http.client.HTTPException) as exc:
                status, version, connection = 0, repr(exc), None
            self.results.append((time.monotonic(), status, version))
            time.sleep(0.01)  # bounded: about 100 requests a second per client at most

    def start(self) -> VariedLoad:
        for n in range(self.clients):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def versions_since(self, moment: float) -> set[str | None]:
        return {v for at, _, v in list(self.results) if at > moment}


@pytest.fixture
def rollout_env(worker_env, request):
    env = dict(worker_env)
    # Worker restarts on a loaded machine may leave an interval or two without
    # ingested traffic: a few more inconclusive intervals before a person is asked.
    env.update(
        ROLLOUT_SWEEP_SECONDS="1",
        SERVE_PROCESS_STALE_SECONDS="5",
        ROLLOUT_INCONCLUSIVE_LIMIT="6",
    )
    marker = request.node.get_closest_marker("rollout_env")  # a test's own settings
    if marker is not None:
        env.update(marker.kwargs)
    return env


@pytest.fixture
def stack(served, rollout_env, real_processes):  # noqa: F811
    """Two serving processes, a worker and beat; returns (serve, worker, served)."""
    serve = real_processes.serve(env=rollout_env)
    worker = real_processes.worker(env=rollout_env)
    real_processes.beat(env=rollout_env)
    wait_for(lambda: warmed_everywhere(served["v1"].pk, 2), timeout=60, message="v1 warm")
    return serve, worker, served


def finished(deployment_id: int, timeout: float = 150) -> Deployment:
    try:
        wait_for(
            lambda: Deployment.objects.get(pk=deployment_id).state in TERMINAL,
            timeout=timeout,
            message="the rollout finished",
        )
    except AssertionError:
        d = Deployment.objects.get(pk=deployment_id)
        seen = [(a.kind, a.verdict, a.decision, a.reason) for a in d.analyses.order_by("id")]
        raise AssertionError(
            f"rollout stuck: state {d.state}, job {d.status}, next check {d.next_check_at}, "
            f"reason {d.reason!r}, log {d.log[-1500:]!r}, analyses {seen}"
        ) from None
    return Deployment.objects.get(pk=deployment_id)


PLAN = {"steps": [25, 50, 100], "step_seconds": 4, "thresholds": {"min_requests": 20}}


def test_a_healthy_canary_replays_steps_and_promotes_itself_with_no_failed_request(stack, personas):
    serve, _worker, s = stack
    load = VariedLoad(serve.port, s["token"]).start()
    try:
        # Some production traffic logged first: what the replay replays.
        wait_for(
            lambda: sum(1 for _, st, _ in load.results if st == 200) > 200,
            timeout=60,
            message="traffic",
        )
        time.sleep(2.5)  # flushed and ingested
        deployment = deployments.deployment_start(
            actor=personas.owner,
            environment=fresh(s["production"]),
            version=s["v2"],
            strategy="canary",
            plan=PLAN,
        )
        done = finished(deployment.pk)
        promoted = time.monotonic()
        assert done.state == "succeeded", (done.reason, list(done.analyses.values()))
        wait_for(lambda: load.versions_since(promoted + 1.0) == {"2"}, timeout=10, message="v2")
    finally:
        load.stop()
    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) == {200}, statuses
    analyses = list(done.analyses.order_by("id").values_list("kind", "verdict", "decision"))
    assert analyses[0] == ("replay", "pass", "expose"), analyses
    assert analyses[-1] == ("step", "pass", "promote"), analyses
    assert ("step", "pass", "advance") in analyses
    replay = done.analyses.get(kind="replay")
    assert replay.figures["rows"] >= 100
    # Both versions answered during the canary, in roughly the steps' shares.
    assert Counter(v for _, _, v in load.results)["2"] > 20
    assert EnvironmentTransition.objects.filter(deployment=done, event="switched").count() == 1


def test_a_canary_with_shifted_predictions_is_rolled_back_though_every_request_succeeds(
    stack, personas
):
    serve, _worker, s = stack
    bad = approve(_validated_by_the_worker(s["model"], personas), personas)
    deployment = deployments.deployment_start(
        actor=personas.owner,
        environment=fresh(s["production"]),
        version=bad,
        strategy="canary",
        plan=PLAN,
    )
    load = VariedLoad(serve.port, s["token"]).start()
    try:
        done = finished(deployment.pk)
        rolled = time.monotonic()
        wait_for(lambda: load.versions_since(rolled + 1.0) == {"1"}, timeout=10, message="v1")
    finally:
        load.stop()
    assert done.state == "rolled_back", done.reason
    assert done.reason.startswith("automatic rollback: prediction PSI")
    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) == {200}, statuses  # its HTTP health was perfect
    assert Counter(v for _, _, v in load.results)[str(bad.number)] > 0  # it did serve
    steps = RolloutAnalysis.objects.filter(deployment=done, kind="step")
    assert [a.decision for a in steps if a.verdict == "fail"][-1] == "rollback"
    production = fresh(s["production"])
    assert (production.stable_version, production.candidate_version, production.phase) == (
        s["v1"],
        None,
        "idle",
    )


def test_a_worker_killed_during_the_rollout_leaves_it_finished_once_never_stuck(
    stack, personas, rollout_env, real_processes
):
    serve, worker, s = stack
    load = VariedLoad(serve.port, s["token"], clients=2).start()
    try:
        deployment = deployments.deployment_start(
            actor=personas.owner,
            environment=fresh(s["production"]),
            version=s["v2"],
            strategy="canary",
            plan=PLAN,
        )
        # Killed while the job runs (warming or replaying), then again while exposed.
        wait_for(
            lambda: Deployment.objects.get(pk=deployment.pk).status == "running",
            timeout=30,
            message="the job claimed",
        )
        stop(worker, signal.SIGKILL)
        worker = real_processes.worker(env=rollout_env)
        wait_for(
            lambda: Deployment.objects.get(pk=deployment.pk).state in ("progressing", *TERMINAL),
            timeout=60,
            message="exposed after the restart",
        )
        time.sleep(PLAN["step_seconds"] * 0.9)  # about when the first step is analysed
        stop(worker, signal.SIGKILL)
        real_processes.worker(env=rollout_env)
        done = finished(deployment.pk)
    finally:
        load.stop()
    assert done.state in ("succeeded", "failed"), done.state
    if done.state == "failed":
        assert done.reason
    else:
        assert EnvironmentTransition.objects.filter(deployment=done, event="switched").count() == 1
        assert fresh(s["production"]).stable_version == s["v2"]
    production = fresh(s["production"])
    assert production.phase == "idle" and production.candidate_version is None
    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) == {200}, statuses


def _ask_for(port: int, token: str, version: int) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            PATH,
            body=BODIES[0],
            headers={
                "Authorization": f"Token {token}",
                "Content-Type": "application/json",
                "X-Model-Version": str(version),
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("X-Model-Version")
    finally:
        connection.close()


def test_a_held_blue_green_previews_to_deployers_then_switches_with_no_failed_request(
    stack, personas
):
    from knox.models import AuthToken

    from lifecycle import rollouts

    serve, _worker, s = stack
    deployer = AuthToken.objects.create(user=personas.owner)[1]
    load = VariedLoad(serve.port, s["token"]).start()
    try:
        deployment = deployments.deployment_start(
            actor=personas.owner,
            environment=fresh(s["production"]),
            version=s["v2"],
            strategy="blue_green",
            plan={"hold_seconds": 600},  # a person promotes long before
        )
        wait_for(
            lambda: Deployment.objects.get(pk=deployment.pk).state in ("progressing", *TERMINAL),
            timeout=90,
            message="the preview is held",
        )
        assert Deployment.objects.get(pk=deployment.pk).state == "progressing"
        held = time.monotonic()
        wait_for(lambda: warmed_everywhere(s["v2"].pk, 2), timeout=60, message="v2 warm")
        # The serving processes see the preview on their next routing poll.
        wait_for(
            lambda: _ask_for(serve.port, deployer, 2) == (200, "2"),
            timeout=15,
            message="the preview answers",
        )
        # Each serving process answers the deployer's preview from the candidate, the
        # serve-only caller gets a 403 for it, and the load still sees only stable.
        previews = [_ask_for(serve.port, deployer, 2) for _ in range(10)]
        assert set(previews) == {(200, "2")}, previews
        assert _ask_for(serve.port, s["token"], 2)[0] == 403
        time.sleep(1.0)
        assert load.versions_since(held) == {"1"}
        switched_at = time.monotonic()
        rollouts.deployment_promote(
            actor=personas.owner, deployment=deployment, reason="preview checked"
        )
        wait_for(lambda: load.versions_since(switched_at + 1.0) == {"2"}, timeout=15, message="v2")
        time.sleep(1.0)
    finally:
        load.stop()
    statuses = Counter(status for _, status, _ in load.results)
    assert set(statuses) == {200}, statuses  # zero failed requests across the switch
    done = Deployment.objects.get(pk=deployment.pk)
    assert done.state == "succeeded" and done.switched_at is not None
    assert EnvironmentTransition.objects.filter(deployment=done, event="switched").count() == 1
    production = fresh(s["production"])
    assert (production.stable_version, production.previous_version, production.phase) == (
        s["v2"],
        s["v1"],
        "idle",
    )


def _validated_by_the_worker(model, personas):
    """A shifted version registered here and validated by the real worker (which would
    race an in-process validation for the registration job)."""
    from registry.models import ModelVersion
    from tests.conftest import register
    from tests.lifecycle.rollout_support import shifted_classifier_bytes

    version = register(model, personas.bot, artifact=shifted_classifier_bytes())
    wait_for(
        lambda: ModelVersion.objects.get(pk=version.pk).status == "ready",
        timeout=60,
        message="the version validated",
    )
    return ModelVersion.objects.get(pk=version.pk)


# No replay here (none of the logged rows is replayed): each shifted candidate must reach
# live traffic to be rolled back automatically; a failed replay fails the deployment,
# which is not an automatic rollback and does not count towards the freeze.
@pytest.mark.rollout_env(ROLLOUT_REPLAY_ROWS="0", ROLLOUT_FREEZE_AFTER="3")
def test_three_automatic_rollbacks_in_a_row_freeze_the_environment_and_alert_each_time(
    stack, personas
):
    from common.errors import DomainError
    from monitoring.models import Alert

    serve, _worker, s = stack
    load = VariedLoad(serve.port, s["token"]).start()
    try:
        for attempt in range(3):
            bad = approve(_validated_by_the_worker(s["model"], personas), personas)
            deployment = deployments.deployment_start(
                actor=personas.owner,
                environment=fresh(s["production"]),
                version=bad,
                strategy="canary",
                plan=PLAN,
            )
            done = finished(deployment.pk)
            assert done.state == "rolled_back", (attempt, done.reason)
        with pytest.raises(DomainError) as refused:
            deployments.deployment_start(
                actor=personas.owner,
                environment=fresh(s["production"]),
                version=s["v2"],
                strategy="canary",
                plan=PLAN,
            )
    finally:
        load.stop()
    assert refused.value.code == "environment_frozen"
    production = fresh(s["production"])
    assert production.frozen and production.automatic_rollbacks == 3
    assert production.stable_version == s["v1"] and production.candidate_version is None
    alerts = Alert.objects.filter(kind="rollback", monitor=None)
    assert alerts.count() == 3
    assert all(a.message.endswith(a.details["reason"]) for a in alerts)
    assert set(Counter(status for _, status, _ in load.results)) == {200}
