"""Load the demo: personas, teams, two models with their versions.

This command seeds the registry (personas, grants, models, datasets, versions)
and the evidence (evaluations, fairness audits, model cards); the reviews come
from ``demo/reviews.py``, the monitors and their traffic from
``demo/monitors.py``, the data from ``demo/samples.py``.

Idempotent: what exists is kept. Passwords are generated and printed once,
when a persona is created (``--reset-passwords`` prints new ones).
"""

from __future__ import annotations

import io
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction

from common.apps import AUDITORS_GROUP
from common.audit import SystemActor
from common.jobs import job_claim
from common.links import absolute_url
from demo import environments, explanations, monitors, retraining, reviews, samples
from registry import services
from registry.choices import DatasetRole, VersionStatus
from registry.models import Dataset, RegisteredModel, RegistrationJob

User = get_user_model()

PERSONAS = [
    # username, full name, role description, groups, staff
    (
        "owner",
        "Olivia Owner",
        "model owner (credit-risk team)",
        ["credit-risk", "ml-engineers"],
        False,
    ),
    ("validator", "Victor Validator", "independent model validator", ["model-validation"], False),
    ("compliance", "Carla Compliance", "compliance officer", ["compliance"], False),
    ("auditor", "Audrey Auditor", "auditor (read-only admin)", [AUDITORS_GROUP], True),
    (
        "pipeline-bot",
        "Pipeline Bot",
        "CI/training pipeline service account",
        ["credit-risk", "ml-engineers"],
        False,
    ),
    ("outsider", "Oscar Outsider", "employee with no access to any model", [], False),
]
DEMO = SystemActor("demo")
MODEL_CARDS = {
    "credit-default": {
        "intended_use": (
            "Rank retail loan applications by the probability of default within 12 months, "
            "to prioritise manual underwriting review."
        ),
        "out_of_scope_use": (
            "Automated rejection without human review; business or mortgage lending; "
            "applicants outside the training population."
        ),
        "limitations": (
            "Trained on synthetic applications. Recorded income carries a pay gap by sex and "
            "recorded credit history is longer for applicants aged 51+, for the same risk."
        ),
        "ethical_considerations": (
            "A model that reads income or credit history selects groups at different rates: "
            "see the fairness audit before any decision use, and the mitigated candidate."
        ),
        "caveats": "Re-audit after every retraining; monitor drift in income and debt ratio.",
    },
    "diabetes-progression": {
        "intended_use": "Research estimate of disease progression one year after baseline.",
        "out_of_scope_use": "Individual clinical decisions.",
        "limitations": "442 patients from one study; features are standardised measurements.",
        "ethical_considerations": "Not validated across populations; no sensitive-group audit.",
    },
}


class Command(BaseCommand):
    help = "Create demo personas and models (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset-passwords", action="store_true")

    def handle(self, *args: Any, reset_passwords: bool = False, **options: Any) -> None:
        users, passwords = self._personas(reset_passwords)
        credit = self._credit_model(users)
        diabetes = self._diabetes_model(users)
        self._grants(users, credit, diabetes)
        self._evidence(users, credit, diabetes)
        # The governance, retraining, monitoring and serving state (reviews, policies,
        # monitors, traffic, runs, environments) comes from their own modules:
        # demo/reviews.py, demo/retraining.py (policies before the alerts, runs after),
        # demo/monitors.py, demo/environments.py.
        loaders = (reviews.load, retraining.policies, monitors.load, retraining.load)
        for loader in (*loaders, environments.load, explanations.load):
            loader(self, users=users, models={"credit": credit, "diabetes": diabetes})
        self._report(users, passwords)

    # --- people ---------------------------------------------------------------

    def _personas(self, reset: bool) -> tuple[dict[str, Any], dict[str, str]]:
        creators, _ = Group.objects.get_or_create(name="ml-engineers")
        creators.permissions.add(Permission.objects.get(codename="add_registeredmodel"))
        users, passwords = {}, {}
        for username, full_name, _role, groups, staff in PERSONAS:
            first, last = full_name.split(" ", 1)
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@modelgate.example",
                    "is_staff": staff,
                },
            )
            if created or reset:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save()
                passwords[username] = password
            for name in groups:
                group, _ = Group.objects.get_or_create(name=name)
                user.groups.add(group)
            users[username] = User.objects.get(pk=user.pk)  # fresh permission cache
        return users, passwords

    def _grants(self, users: dict[str, Any], *models: RegisteredModel) -> None:
        for model in models:
            for username in ("validator", "compliance"):
                services.registered_model_grant(
                    actor=DEMO, model=model, role="approver", user=users[username]
                )
            services.registered_model_grant(
                actor=DEMO, model=model, role="contributor", user=users["pipeline-bot"]
            )

    # --- evidence ---------------------------------------------------------------

    def _evidence(self, users: dict[str, Any], credit: Any, diabetes: Any) -> None:
        """Evaluations, fairness audits and model cards, run in-process so that the
        demo shows them before any worker starts (the queued copies then find the
        jobs done and do nothing)."""
        from governance import fairness_audits, model_cards
        from governance.models import FairnessAudit, ModelCard
        from governance.tasks import heavy_fairness_audit
        from lifecycle.models import Evaluation
        from lifecycle.services import evaluation_start
        from lifecycle.tasks import heavy_evaluate

        bot = users["pipeline-bot"]
        plans = [
            (credit, "applications-holdout", samples.CREDIT_TARGET, samples.CREDIT_SENSITIVE),
            (diabetes, "diabetes-holdout", samples.DIABETES_TARGET, None),
        ]
        for model, dataset_name, target, sensitive in plans:
            dataset = Dataset.objects.get(registered_model=model, name=dataset_name)
            for version in model.versions.filter(status=VersionStatus.READY).order_by("number"):
                if not Evaluation.objects.filter(version=version, status="succeeded").exists():
                    job = evaluation_start(
                        actor=bot, version=version, dataset=dataset, target_column=target
                    )
                    heavy_evaluate.run(job.pk)
                if sensitive and not FairnessAudit.objects.filter(version=version).exists():
                    audit = fairness_audits.fairness_audit_start(
                        actor=bot,
                        version=version,
                        dataset=dataset,
                        target_column=target,
                        sensitive_columns=sensitive,
                    )
                    heavy_fairness_audit.run(audit.pk)
            for version in model.versions.filter(status=VersionStatus.READY):
                if not ModelCard.objects.filter(version=version).exists():
                    model_cards.model_card_update(
                        actor=users["owner"], version=version, fields=MODEL_CARDS[model.name]
                    )

    # --- models -----------------------------------------------------------------

    def _credit_model(self, users: dict[str, Any]) -> RegisteredModel:
        model = self._model(
            users,
            name="credit-default",
            task="classification",
            risk_tier="high",
            description="Probability that a loan applicant defaults within 12 months.",
            tags=["credit", "retail-banking"],
        )
        if not model.versions.exists():
            self._credit_versions(users, model)
        if not model.aliases.filter(name="staging").exists():
            latest = model.versions.filter(status=VersionStatus.READY).order_by("-number").first()
            services.alias_set(
                actor=users["owner"], model=model, name="staging", version_number=latest.number
            )
        return model

    def _credit_versions(self, users: dict[str, Any], model: RegisteredModel) -> None:
        """v1: a scorecard without the columns whose records carry group gaps (fair, and
        good enough); v2: every applicant column (better, and unfair: see samples.py).
        The hold-out is large so that the audit's smallest group (women aged 51+) has
        about 1,800 rows and its rates are measured, not guessed."""
        from sklearn.linear_model import LogisticRegression

        train = samples.credit_data(10000, seed=1)
        evaluation = samples.credit_data(20000, seed=2)
        train_ds = self._dataset(users, model, "applications-2025", DatasetRole.TRAINING, train)
        self._dataset(users, model, "applications-holdout", DatasetRole.EVALUATION, evaluation)
        self._dataset(users, model, "applications-reference", DatasetRole.REFERENCE, train)
        candidates = [
            (
                "scorecard: debt, accounts, late payments and employment (no income, no history)",
                samples.CREDIT_SCORECARD_FEATURES,
                LogisticRegression(max_iter=500, class_weight="balanced"),
            ),
            (
                "logistic regression on every applicant column",
                samples.CREDIT_FEATURES,
                LogisticRegression(max_iter=500),
            ),
        ]
        parent = None
        for description, features, estimator in candidates:
            fitted = samples.credit_pipeline(estimator, features).fit(
                train[features], train[samples.CREDIT_TARGET]
            )
            metrics = self._classification_metrics(
                fitted, evaluation[features], evaluation[samples.CREDIT_TARGET]
            )
            parent = self._register(
                users, model, fitted, train_ds, samples.CREDIT_TARGET, metrics, description, parent
            )

    def _diabetes_model(self, users: dict[str, Any]) -> RegisteredModel:
        model = self._model(
            users,
            name="diabetes-progression",
            task="regression",
            risk_tier="medium",
            description="Disease progression one year after baseline (scikit-learn diabetes data).",
            tags=["health", "regression"],
        )
        if not model.versions.exists():
            self._diabetes_versions(users, model)
        if not model.aliases.filter(name="champion").exists():
            latest = model.versions.filter(status=VersionStatus.READY).order_by("-number").first()
            services.alias_set(
                actor=users["owner"], model=model, name="champion", version_number=latest.number
            )
        return model

    def _diabetes_versions(self, users: dict[str, Any], model: RegisteredModel) -> None:
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import train_test_split

        frame = samples.diabetes_data()
        train, holdout = train_test_split(frame, test_size=0.3, random_state=0)
        train_ds = self._dataset(users, model, "diabetes-train", DatasetRole.TRAINING, train)
        self._dataset(users, model, "diabetes-holdout", DatasetRole.EVALUATION, holdout)
        target = samples.DIABETES_TARGET
        features = [c for c in frame.columns if c != target]
        parent = None
        for description, estimator in [
            ("ridge baseline", Ridge(alpha=1.0)),
            ("gradient boosting", GradientBoostingRegressor(random_state=0)),
        ]:
            fitted = estimator.fit(train[features], train[target])
            metrics = self._regression_metrics(fitted, holdout[features], holdout[target])
            parent = self._register(
                users, model, fitted, train_ds, target, metrics, description, parent
            )

    def _model(self, users: dict[str, Any], *, name: str, **fields: Any) -> RegisteredModel:
        existing = RegisteredModel.objects.filter(name=name).first()
        if existing:
            return existing
        team = Group.objects.get(name="credit-risk")
        return services.registered_model_create(
            actor=users["owner"], name=name, team=team, **fields
        )

    def _dataset(
        self, users: dict[str, Any], model: RegisteredModel, name: str, role: str, frame: Any
    ) -> Dataset:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return services.dataset_upload(
            actor=users["pipeline-bot"],
            model=model,
            name=name,
            role=role,
            upload=buffer,
            filename=f"{name}.parquet",
        )

    def _register(
        self,
        users: dict[str, Any],
        model: RegisteredModel,
        fitted: Any,
        dataset: Dataset,
        target: str,
        metrics: dict[str, float],
        description: str,
        parent: Any,
    ) -> Any:
        import skops.io as sio

        version = services.model_version_register(
            actor=users["pipeline-bot"],
            model=model,
            artifact=io.BytesIO(sio.dumps(fitted)),
            metrics=metrics,
            training_dataset=dataset,
            target_column=target,
            parent_number=parent.number if parent else None,
            source_run_id=f"demo-run-{secrets.token_hex(4)}",
            source_commit=secrets.token_hex(20),
            description=description,
            tags=["demo"],
        )
        # The demo validates in-process: the worker may not be running yet.
        with transaction.atomic():
            job = job_claim(RegistrationJob, version.registration_job.pk)
        if job is not None:
            version = services.model_version_validate(job=job)
        if version.status != VersionStatus.READY:
            raise RuntimeError(f"demo version failed validation: {version.status_reason}")
        return version

    @staticmethod
    def _classification_metrics(fitted: Any, X: Any, y: Any) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

        predicted = fitted.predict(X)
        return {
            "accuracy": round(float(accuracy_score(y, predicted)), 4),
            "f1": round(float(f1_score(y, predicted)), 4),
            "roc_auc": round(float(roc_auc_score(y, fitted.predict_proba(X)[:, 1])), 4),
        }

    @staticmethod
    def _regression_metrics(fitted: Any, X: Any, y: Any) -> dict[str, float]:
        from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

        predicted = fitted.predict(X)
        return {
            "rmse": round(float(root_mean_squared_error(y, predicted)), 4),
            "mae": round(float(mean_absolute_error(y, predicted)), 4),
            "r2": round(float(r2_score(y, predicted)), 4),
        }

    # --- output -----------------------------------------------------------------

    def _report(self, users: dict[str, Any], passwords: dict[str, str]) -> None:
        self.stdout.write("")
        self.stdout.write(f"ModelGate demo personas (log in at {absolute_url('login')}):")
        for username, _full, role, _groups, _staff in PERSONAS:
            shown = passwords.get(username, "(unchanged; run `manage.py demo --reset-passwords`)")
            self.stdout.write(f"  {username:<13} {shown:<24} {role}")
        if passwords:
            self.stdout.write("These passwords are shown only now. Keep them for this demo.")
        self.stdout.write("")
