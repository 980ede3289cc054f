"""`make loop`: the model lifecycle as one scripted scenario against the running system.

``manage.py loop`` (demo/management/commands/loop.py) loads the demo, starts the four
real processes (web, serve, worker, beat: ``config.run.build_children``) and plays:

1. production traffic on ``credit-default``/``production`` through the serving
   endpoint (the client's ``predict``), then its labels (``log_labels``);
2. the drift: from then on, ``income`` is multiplied by 1.35 and ``debt_ratio`` by 1.6
   (fresh applicants from ``samples.credit_data`` with a fixed seed, labels as drawn
   before the shift: the same applicants, recorded differently), so the champion's
   ranking degrades;
3. a monitor following ``@production`` (judged against the holdout metrics, over the
   newest rows, every minute; beat claims it every ``MONITOR_CLAIM_SECONDS``) opens
   a drift alert and a performance alert;
4. the alert requests a retraining run under the model's policy (refit on the training
   data plus the labelled production rows), run by the worker;
5. its follow-up (worker) evaluates the candidate against the champion, audits its
   fairness, files its card and opens its review;
6. the demo personas sign, through ``reviews.signoff_create`` with their re-entered
   passwords (printed as "a person signs here"); or, with ``signoffs="external"``
   (``manage.py loop --signoffs external``), the loop prints who signs which review
   where, and waits for the personas to sign it in the web UI (the browser test,
   tests/demo/test_loop_browser.py, clicks them);
7. the owner deploys it to production as a canary (the client's ``deploy``): a replay
   on production rows first, then steps analysed on live labelled traffic, promoted;
8. round two: a candidate trained on corrupted labels (a label feed that wrote
   "default" for every production row) passes its paperwork and is deployed the same
   way, just after a burst of the day's applications whose outcomes are not known yet:
   its replay (on those, the newest logged requests) can judge its answers' errors,
   latency, distribution and disagreement with stable, not its accuracy; the canary
   analysis, once live labelled traffic arrives, rolls it back automatically, with the
   reason (round one's replay ran on labelled requests and judged accuracy too);
9. the timeline (each step, its time, its audit event's hash) and the audit chain's
   verification.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from common.auth import token_issue
from common.models import AuditEvent
from demo import samples

MODEL = "credit-default"
ENVIRONMENT = "production"
# The documented, seeded shift, in two of the champion's four inputs: debt ratios recorded
# 1.6 times higher and one more late payment on every file (a changed bureau feed);
# the outcomes (labels) are those of the applicants as drawn, before the shift.
DRIFT_DESCRIPTION = "debt_ratio x1.6, late_payments +1"
SEED = 16
REQUEST_ROWS = 50  # rows per request to the serving endpoint

# The canary's analysis thresholds, both rounds (over rollout_analysis's defaults): a
# candidate retrained on drifted traffic is meant to predict differently from the stale
# champion, so the prediction-distribution and disagreement checks are loosened; the
# accuracy on live labelled requests (metric_drop 0.05) judges, with errors and latency.
CANARY_THRESHOLDS = {"prediction_psi": 10.0, "disagreement": 0.6}

# Who signs, in which meaning, with which comment (the policy's three roles).
SIGNOFF_MEANINGS = {
    "owner": ("reviewed", "Business case and data lineage confirmed."),
    "validator": ("validated", "Back-test and evidence reproduced."),
    "compliance": ("approved_for_deployment", "Regulatory review done."),
}
# "services": the loop signs for the personas (reviews.signoff_create, printed "a person
# signs here"); "external": the personas sign in the web UI and the loop waits for them.
SIGNOFF_MODES = ("services", "external")

# Environment for the processes the loop starts (and this one): minutes become seconds.
LOOP_ENVIRONMENT = {
    # Few beat messages: on two shared cores and the filesystem broker the worker files
    # about one message a second, and the canary's analysis waits for the serving logs.
    "MONITOR_CLAIM_SECONDS": "10",
    "RETRAINING_SWEEP_SECONDS": "20",
    "ROLLOUT_SWEEP_SECONDS": "3",
    "SERVE_LOG_FLUSH_SECONDS": "3",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
}


class LoopFailed(Exception):
    """A step did not reach its outcome in time (the message says which)."""


@dataclass
class Step:
    label: str
    at: dt.datetime
    hash: str
    detail: str = ""


@dataclass
class Scenario:
    out: Any
    host: str = "127.0.0.1"
    port: int = 8010
    serve_port: int = 8011
    rows: int = 1500  # drifted rows before the monitor's check, and per canary phase
    step_seconds: float = 20.0
    timeout: float = 240.0
    signoffs: str = "services"  # one of SIGNOFF_MODES
    signoff_timeout: float = 900.0  # per round, when the personas sign in the web UI
    log_path: Path | None = None
    steps: list[Step] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ output

    def say(self, text: str = "") -> None:
        self.out.write(text)
        self.out.flush() if hasattr(self.out, "flush") else None

    def step(self, label: str, action: str, detail: str = "", **filters: Any) -> None:
        """Record a timeline step: the newest audit event of ``action`` (and filters)."""
        event = (
            AuditEvent.objects.filter(action=action, **filters).order_by("-seq").first()
            if action
            else None
        )
        at = event.occurred_at if event else timezone.now()
        self.steps.append(Step(label, at, event.hash if event else "", detail))
        self.say(f"[{at:%H:%M:%S}] {label}" + (f": {detail}" if detail else ""))

    def wait(self, what: str, probe: Callable[[], Any], timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(1)
        raise LoopFailed(f"timed out waiting for {what}")

    # ------------------------------------------------------------------ setup

    def personas(self) -> dict[str, tuple[Any, str]]:
        """New passwords for the signers (printed: they re-enter them to sign)."""
        users = {}
        for name in ("owner", "validator", "compliance"):
            user = get_user_model().objects.get(username=name)
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
            users[name] = (user, password)
        return users

    def clients(self) -> tuple[Any, Any, Any]:
        import sys

        client = str(Path(__file__).resolve().parent.parent / "client")
        if client not in sys.path:  # the client, as pip would install it from the repository
            sys.path.insert(0, client)
        from modelgate import ModelGate

        bot = get_user_model().objects.get(username="pipeline-bot")
        owner = get_user_model().objects.get(username="owner")
        web = f"http://{self.host}:{self.port}"
        serve = f"http://{self.host}:{self.serve_port}"
        bot_token, _ = token_issue(user=bot, reason="make loop")
        owner_token, _ = token_issue(user=owner, reason="make loop")
        return (
            ModelGate(web, token=bot_token),
            ModelGate(serve, token=bot_token),
            ModelGate(web, token=owner_token),
        )

    # ------------------------------------------------------------------ traffic

    def applicants(self, rows: int, seed: int, *, drifted: bool) -> pd.DataFrame:
        frame = samples.credit_data(rows, seed=seed)
        if drifted:
            frame["debt_ratio"] = (frame["debt_ratio"] * 1.6).round(4)
            frame["late_payments"] = frame["late_payments"] + 1
        return frame

    def send(
        self, serve: Any, pipeline: Any, frame: pd.DataFrame, tag: str, *, label: bool = True
    ) -> int:
        """Score ``frame`` through the serving endpoint in requests of REQUEST_ROWS
        rows (request ids ``<tag>-<k>``, rows ``<tag>-<k>:<i>``), then post its labels."""
        features = [c for c in samples.CREDIT_FEATURES if c in frame]
        ids: list[str] = []
        for k, start in enumerate(range(0, len(frame), REQUEST_ROWS)):
            chunk = frame.iloc[start : start + REQUEST_ROWS]
            request_id = f"{tag}-{k}"
            serve.predict(MODEL, ENVIRONMENT, chunk[features], request_id=request_id)
            ids.extend(f"{request_id}:{i}" for i in range(len(chunk)))
        if label:
            labels = pd.DataFrame(
                {"request_id": ids, "label": frame[samples.CREDIT_TARGET].to_list()}
            )
            pipeline.log_labels(MODEL, labels, batch_id=f"labels-{tag}")
        return len(ids)

    def todays_applications(self, serve: Any, pipeline: Any) -> None:
        """Serve a replay's worth of applications with no outcome yet (labels come
        months later in credit) and wait until they are in the prediction log: the
        replay scores the newest logged requests, so it judges no accuracy this time."""
        from django.conf import settings

        before = self.served_rows()
        frame = self.applicants(settings.ROLLOUT_REPLAY_ROWS, SEED + 500, drifted=True)
        sent = self.send(serve, pipeline, frame, "loop-today", label=False)
        self.wait(
            "today's applications in the prediction log",
            lambda: self.served_rows() >= before + sent or None,
        )
        self.step(
            "Applications served, outcomes unknown",
            "monitoring.predictions.ingest",
            f"{sent} rows: the replay of the next canary has no labels to judge accuracy on",
        )

    def served_rows(self) -> int:
        from monitoring.models import PredictionBatch

        return sum(
            PredictionBatch.objects.filter(
                version__registered_model__name=MODEL, batch_id__startswith="serve-"
            ).values_list("row_count", flat=True)
        )

    # ------------------------------------------------------------------ the scenario

    def run(self) -> dict[str, Any]:
        from governance import reviews
        from governance.models import Review
        from lifecycle.models import RetrainingRun
        from monitoring import services as monitoring
        from monitoring.models import Alert
        from registry.models import RegisteredModel

        started = time.monotonic()
        users = self.personas()
        pipeline, serve, owner = self.clients()
        model = RegisteredModel.objects.get(name=MODEL)
        self.say("Personas who sign in this scenario (passwords set for this run):")
        for name, (user, password) in users.items():
            self.say(f"  {name:<11} {password}  ({user.get_full_name()})")
        self.say("")
        champion = owner.resolve(f"{MODEL}@{ENVIRONMENT}")
        self.step("Champion serving", "", f"{MODEL} v{champion['number']} in {ENVIRONMENT}")

        # 1. production traffic, then its labels.
        served_before = self.served_rows()
        sent = self.send(serve, pipeline, self.applicants(500, SEED, drifted=False), "loop-a")
        self.step("Production traffic", "monitoring.labels.ingest", f"{sent} rows, labelled")
        # 2. drift.
        sent += self.send(
            serve, pipeline, self.applicants(self.rows, SEED + 1, drifted=True), "loop-b"
        )
        self.wait(
            "the served rows to be logged",
            lambda: self.served_rows() - served_before >= sent,
        )
        self.step(
            "Traffic drifted",
            "monitoring.labels.ingest",
            f"{DRIFT_DESCRIPTION} on {self.rows} rows (seed {SEED + 1}), labelled",
        )
        # 3. the monitor, following @production, checked by beat and the worker.
        monitor = monitoring.monitor_create(
            actor=users["owner"][0],
            model=model,
            alias=ENVIRONMENT,
            name=f"loop-{secrets.token_hex(3)}",
            window_hours=24 * 7,
            window_rows=self.rows,
            schedule_minutes=1,
            min_rows=200,
            baseline="holdout",
            request_retraining=True,
        )
        self.step("Monitor created", "monitoring.monitor.create", monitor.name)
        alerts = self.wait(
            "the drift and performance alerts",
            lambda: (
                {a.kind: a for a in Alert.objects.filter(monitor=monitor)}
                if {"drift", "performance"}
                <= set(Alert.objects.filter(monitor=monitor).values_list("kind", flat=True))
                else None
            ),
        )
        for kind in ("drift", "performance"):
            self.step(
                f"Alert opened ({kind})",
                "monitoring.alert.open",
                alerts[kind].message,
                object_id=str(alerts[kind].pk),
            )
        self.outcome["alerts"] = sorted(alerts)

        # 4-5. the retraining run, its candidate and its evidence, on the worker.
        run = self.wait(
            "a retraining run from the alert",
            lambda: RetrainingRun.objects.filter(
                registered_model=model, trigger="alert", queued_at__gte=monitor.created_at
            ).first(),
        )
        self.step("Retraining run requested", "lifecycle.retraining_run.requested", str(run))
        run = self.wait(
            "the run's candidate in review",
            lambda: (
                RetrainingRun.objects.filter(
                    pk=run.pk, version__isnull=False, outcome="candidate_submitted"
                ).first()
                or self._failed_run(run)
            ),
            timeout=self.timeout * 2,
        )
        candidate = run.version
        self.outcome["run"] = run.outcome
        self.step(
            "Candidate trained",
            "lifecycle.retraining_run.candidate_registered",
            f"v{candidate.number}: {run.outcome_reason or run.get_outcome_display()}",
        )
        self.evidence(candidate)
        review = Review.objects.get(version=candidate)
        self.step("Review opened", "governance.review.in_review", f"v{candidate.number}")

        # 6. the sign-offs.
        self.sign(reviews, users, candidate)
        review.refresh_from_db()
        self.outcome["review"] = review.state
        self.step("Review approved", "governance.review.approved", f"v{candidate.number}")

        # 7. the canary.
        deployment = self.canary(owner, serve, pipeline, candidate.number, "loop-c")
        self.outcome["round_one"] = deployment["state"]
        # 8. round two.
        bad = self.bad_candidate(pipeline, owner)
        self.evidence(bad)
        self.step("Review opened (round two)", "governance.review.in_review", f"v{bad.number}")
        self.sign(reviews, users, bad)
        self.step("Review approved (round two)", "governance.review.approved", f"v{bad.number}")
        self.todays_applications(serve, pipeline)
        second = self.canary(owner, serve, pipeline, bad.number, "loop-d")
        self.outcome["round_two"] = second["state"]
        self.outcome["round_two_reason"] = second.get("reason", "")

        # 9. timeline and audit chain.
        self.outcome["audit"] = self.verify()
        self.outcome["seconds"] = time.monotonic() - started
        self.timeline()
        return self.outcome

    def _failed_run(self, run: Any) -> None:
        run.refresh_from_db()
        if run.status in ("failed", "cancelled") or run.outcome in (
            "failed",
            "rejected_by_gate",
            "no_candidate",
        ):
            raise LoopFailed(f"{run} ended {run.status}/{run.outcome}: {run.outcome_reason}")
        return None

    def evidence(self, version: Any) -> None:
        """Wait for the evaluation, the fairness audit, the card and the open review."""
        from governance import selectors
        from governance.models import Review

        def ready() -> Any:
            latest = selectors.latest_evidence(version=version)
            review = Review.objects.filter(version=version).first()
            if review is None or not {
                "evaluation_report",
                "fairness_audit",
                "model_card",
            } <= set(latest):
                return None
            return latest

        latest = self.wait(f"the evidence of v{version.number}", ready, timeout=self.timeout * 2)
        for kind in ("evaluation_report", "fairness_audit", "model_card"):
            item = latest[kind]
            verdict = {True: "passed", False: "FAILED", None: "filed"}[item.passed]
            self.step(
                f"Evidence: {kind.replace('_', ' ')}",
                "governance.evidence.filed",
                f"v{version.number} {verdict}",
                object_id=str(item.pk),
            )

    def sign(self, reviews: Any, users: dict[str, tuple[Any, str]], version: Any) -> None:
        from governance import selectors
        from governance.models import Review

        review = Review.objects.get(version=version)
        # (role, user, password, meaning, comment) of each signer still missing.
        signers = [
            (role, *users[role], *SIGNOFF_MEANINGS[role])
            for role in (
                item["requirement"].split(":", 1)[1]
                for item in selectors.review_checklist(review=review)
                if item["requirement"].startswith("signoff:") and not item["met"]
            )
        ]
        if self.signoffs == "external":
            self.await_signoffs(review, signers)
        else:
            for role, user, password, meaning, comment in signers:
                self.say(
                    f"  >>> A PERSON SIGNS HERE: {user.get_full_name()} ({role}) re-enters "
                    f"the password {password!r} and signs v{version.number} as {meaning!r}"
                )
                reviews.signoff_create(
                    actor=user,
                    version=version,
                    password=password,
                    decision="approve",
                    meaning=meaning,
                    comment=comment,
                    role=role,
                )
                self.step(f"Signed by {role}", "governance.signoff.created", user.get_full_name())
        review.refresh_from_db()
        if review.state != "approved":
            missing = [i["requirement"] for i in selectors.review_checklist(review=review)]
            raise LoopFailed(f"v{version.number}'s review is {review.state}: {missing}")

    def await_signoffs(self, review: Any, signers: list[tuple]) -> None:
        """Say who signs the review where, then wait (``signoff_timeout``) until it is
        approved, recording each sign-off as it arrives; a rejection stops the loop."""
        from common.links import absolute_url
        from governance.models import SignOff

        version = review.version
        url = absolute_url("governance:review", version.registered_model.name, version.number)
        for role, user, _password, meaning, _comment in signers:
            self.say(
                f"  >>> SIGN IN THE WEB UI: {user.get_full_name()} ({role}) logs in as "
                f"{user.get_username()!r}, opens {url} and signs v{version.number} as "
                f"{meaning!r}, re-entering the password"
            )
        self.say(f"  Waiting up to {self.signoff_timeout:g} s for the sign-offs...")
        recorded: set[int] = set()

        def approved() -> bool:
            arrived = (
                SignOff.objects.filter(review=review, valid=True)
                .exclude(pk__in=recorded)
                .select_related("signer")
                .order_by("signed_at", "pk")
            )
            for signoff in arrived:
                recorded.add(signoff.pk)
                self.step(
                    f"Signed by {signoff.role}",
                    "governance.signoff.created",
                    f"{signoff.signer.get_full_name() or signoff.signer.get_username()}, "
                    f"signed in person ({signoff.decision})",
                    object_id=str(signoff.pk),
                )
            review.refresh_from_db(fields=["state"])
            if review.state in ("rejected", "changes_requested"):
                raise LoopFailed(f"v{version.number}'s review was {review.state} in the web UI")
            return review.state == "approved"

        self.wait(f"the sign-offs of v{version.number}", approved, timeout=self.signoff_timeout)

    def canary(self, owner: Any, serve: Any, pipeline: Any, number: int, tag: str) -> dict:
        """Deploy ``number`` as a canary with replay and keep labelled traffic flowing
        until the rollout ends (promoted, rolled back, or stopped by its replay)."""
        deployment = owner.deploy(
            MODEL,
            ENVIRONMENT,
            number,
            strategy="canary",
            steps=[25, 50, 100],
            step_seconds=self.step_seconds,
            thresholds=CANARY_THRESHOLDS,
            # Judged on accuracy, not the policy's ROC AUC: a model trained on labels
            # all set to "default" still ranks applicants, but it answers wrongly.
            metric="accuracy",
        )
        self.step(
            f"Canary started (v{number})",
            "lifecycle.deployment.requested",
            f"steps 25/50/100 %, {self.step_seconds:g} s each, replay first",
        )
        stop = threading.Event()

        def traffic() -> None:
            k = 0
            while not stop.is_set():
                frame = self.applicants(200, SEED + 100 + k, drifted=True)
                try:
                    self.send(serve, pipeline, frame, f"{tag}-{k}")
                except Exception as exc:  # the loop reports, never dies here
                    self.say(f"  (traffic: {exc})")
                k += 1
                stop.wait(2.0)

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        try:
            final = self.wait(
                f"the canary of v{number} to end",
                lambda: next(
                    (
                        d
                        for d in owner.deployments(MODEL, ENVIRONMENT)
                        if d["id"] == deployment["id"]
                        and d["state"] in ("succeeded", "rolled_back", "failed", "aborted")
                    ),
                    None,
                ),
                timeout=self.timeout * 2,
            )
        finally:
            stop.set()
            thread.join(timeout=30)
        for analysis in final.get("analyses", []):
            where = "replay" if analysis.get("kind") == "replay" else f"step {analysis['step']}"
            reason = analysis.get("reason") or ""
            self.say(
                f"    analysis, {where}: {analysis.get('verdict')} -> {analysis.get('decision')}"
                + (f" ({reason})" if reason else "")
            )
        if final["state"] == "succeeded":
            self.step(f"Canary promoted (v{number})", "lifecycle.deployment.succeeded", "")
        else:
            self.step(
                f"Canary {final['state'].replace('_', ' ')} (v{number})",
                f"lifecycle.deployment.{final['state']}",
                final.get("reason", ""),
            )
        return final

    def bad_candidate(self, pipeline: Any, owner: Any) -> Any:
        """Round two: refit the champion's pipeline on the training data plus production
        rows whose labels a broken feed wrote as "default" (1) for every row."""
        from sklearn.base import clone

        from registry.models import ModelVersion

        champion = owner.resolve(f"{MODEL}@{ENVIRONMENT}")
        estimator = pipeline.load(f"{MODEL}@{ENVIRONMENT}")
        features = champion.get("feature_names")
        features = features or list(getattr(estimator, "feature_names_in_", []))
        train = samples.credit_data(10000, seed=1)
        corrupted = self.applicants(4000, SEED + 7, drifted=True)
        corrupted[samples.CREDIT_TARGET] = 1
        frame = pd.concat([train, corrupted], ignore_index=True)
        fitted = clone(estimator).fit(frame[features], frame[samples.CREDIT_TARGET])
        holdout = samples.credit_data(5000, seed=2)
        from sklearn.metrics import roc_auc_score

        auc = float(
            roc_auc_score(
                holdout[samples.CREDIT_TARGET], fitted.predict_proba(holdout[features])[:, 1]
            )
        )
        version = pipeline.register(
            fitted,
            model=MODEL,
            training_data=frame[[*features, samples.CREDIT_TARGET]],
            target=samples.CREDIT_TARGET,
            metrics={"roc_auc": round(auc, 4)},
            parent=champion["number"],
            source={"run_id": "loop-round-two", "commit": secrets.token_hex(20)},
            description="refit on production rows from a broken label feed (every label 1)",
            progress=None,
        )
        if version["status"] != "ready":
            raise LoopFailed(f"the bad candidate was not validated: {version}")
        self.step(
            "Bad candidate registered (round two)",
            "registry.version.ready",
            f"v{version['number']}: labels corrupted, holdout ROC AUC {auc:.3f}",
        )
        bad = ModelVersion.objects.get(registered_model__name=MODEL, number=version["number"])
        self._paperwork(owner, bad)
        return bad

    def _paperwork(self, owner: Any, version: Any) -> None:
        """What a pipeline asks for after registering: evaluation, fairness audit (the
        worker runs them), the card, the review."""
        from django.contrib.auth import get_user_model

        from governance import fairness_audits, model_cards, reviews
        from lifecycle.services import evaluation_start
        from registry.models import Dataset

        bot = get_user_model().objects.get(username="pipeline-bot")
        owner_user = get_user_model().objects.get(username="owner")
        holdout = Dataset.objects.get(
            registered_model=version.registered_model, name="applications-holdout"
        )
        evaluation_start(
            actor=bot, version=version, dataset=holdout, target_column=samples.CREDIT_TARGET
        )
        fairness_audits.fairness_audit_start(
            actor=bot,
            version=version,
            dataset=holdout,
            target_column=samples.CREDIT_TARGET,
            sensitive_columns=["sex"],
        )
        from demo.management.commands.demo import MODEL_CARDS

        model_cards.model_card_update(actor=owner_user, version=version, fields=MODEL_CARDS[MODEL])
        reviews.review_submit(actor=owner_user, version=version)

    # ------------------------------------------------------------------ the end

    def verify(self) -> str:
        from django.core.management.base import CommandError

        buffer = io.StringIO()
        try:
            call_command("audit_verify", stdout=buffer, stderr=buffer)
        except CommandError as exc:  # a broken chain: printed, and the loop fails
            self.outcome["audit"] = str(exc)
            self.timeline()
            raise LoopFailed(str(exc)) from None
        return buffer.getvalue().strip()

    def timeline(self) -> None:
        self.say("")
        self.say("Timeline (time UTC, step, audit event hash):")
        for s in self.steps:
            self.say(f"  {s.at:%H:%M:%S}  {s.label:<38} {s.hash[:16] or '-':<16}  {s.detail}")
        self.say("")
        self.say(f"Audit chain: {self.outcome.get('audit', 'not verified (the loop stopped)')}")


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own URL
                return
        except OSError:
            time.sleep(0.5)
    raise LoopFailed(f"{url} did not answer within {timeout:g} s")


def environment_defaults() -> None:
    for key, value in LOOP_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


_ = np  # numpy is pandas' engine here
