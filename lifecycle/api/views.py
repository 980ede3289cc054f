"""Lifecycle endpoints: evaluations under a version; environments and deployments;
retraining policy and runs under a model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import DomainError
from common.idempotency import idempotent
from common.permissions import get_visible
from common.schema import error_responses
from governance import selectors as governance_selectors
from governance.models import FairnessAudit
from lifecycle import deployments, retraining, rollouts, selectors, services
from lifecycle.api.serializers import (
    DeploymentRequestSerializer,
    DeploymentSerializer,
    EnvironmentCreateSerializer,
    EnvironmentSerializer,
    EvaluationRequestSerializer,
    EvaluationSerializer,
    ExplanationRequestSerializer,
    ExplanationSerializer,
    MitigationRequestSerializer,
    RetrainingPolicySerializer,
    RetrainingPolicyWriteSerializer,
    RetrainingRunSerializer,
    RetrainRequestSerializer,
    RollbackRequestSerializer,
    RolloutActionSerializer,
)
from lifecycle.models import Deployment, Environment, Evaluation, Explanation, RetrainingRun
from registry import selectors as registry_selectors
from registry.api.scoping import VersionJobs, VersionScoped
from registry.models import Dataset, ModelVersion, RegisteredModel


class EvaluationViewSet(VersionJobs):
    serializer_class = EvaluationSerializer
    queryset = Evaluation.objects.none()
    list_selector = staticmethod(selectors.evaluation_list)
    get_selector = staticmethod(selectors.evaluation_get)

    @extend_schema(request=EvaluationRequestSerializer, responses={202: EvaluationSerializer})
    def create(self, request: Request, model_name: str, number: int) -> Response:
        version = self._version()
        body = EvaluationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        dataset = registry_selectors.dataset_get(
            user=request.user, pk=body.validated_data["dataset"]
        )
        job = services.evaluation_start(
            actor=request.user,
            version=version,
            dataset=dataset,
            target_column=body.validated_data["target_column"],
        )
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExplanationViewSet(VersionJobs):
    """Per-prediction explanations of a sample of a version's rows (a worker job)."""

    serializer_class = ExplanationSerializer
    queryset = Explanation.objects.none()
    list_selector = staticmethod(selectors.explanation_list)
    get_selector = staticmethod(selectors.explanation_get)

    @extend_schema(request=ExplanationRequestSerializer, responses={202: ExplanationSerializer})
    def create(self, request: Request, model_name: str, number: int) -> Response:
        body = ExplanationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.explanation_start(
            actor=request.user,
            version=self._version(),
            sample_size=body.validated_data["sample_size"],
        )
        return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        raise DomainError("invalid", f"{name} is an ISO 8601 time.", details={name: value[:60]})
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_bool(value: str | None, name: str) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise DomainError("invalid", f"{name} is true or false.", details={name: value[:20]})


def log_filters(params: Any) -> dict[str, Any]:
    """The prediction log's filters from a query string (shared by the API and the UI)."""
    version = params.get("version")
    if version not in (None, ""):
        try:
            version = int(version)
        except ValueError:
            raise DomainError("invalid", "version is a version number.") from None
    else:
        version = None
    return {
        "version": version,
        "since": _parse_time(params.get("since"), "since"),
        "until": _parse_time(params.get("until"), "until"),
        "shadow": _parse_bool(params.get("shadow"), "shadow"),
        "error": _parse_bool(params.get("error"), "error"),
    }


def log_export_response(environment: Environment, table: Any, fmt: str) -> HttpResponse:
    from lifecycle.serving_logs import export_bytes

    if fmt not in ("csv", "parquet"):
        raise DomainError("invalid", "export is csv or parquet.", details={"export": fmt[:20]})
    body = export_bytes(table, fmt)
    kind = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
    response = HttpResponse(body, content_type=kind)
    name = f"{environment.registered_model.name}-{environment.name}-predictions.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Row-Count"] = str(table.num_rows)
    return response


ERRORS = error_responses(400, 401, 403, 404, 409)


class EnvironmentViewSet(viewsets.GenericViewSet):
    """Environments of a model, their deployments, rollback and prediction log."""

    serializer_class = EnvironmentSerializer
    queryset = Environment.objects.none()
    lookup_field = "environment"

    def _model(self) -> RegisteredModel:
        return registry_selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])

    def _environment(self) -> Environment:
        return selectors.environment_get(
            user=self.request.user, model=self._model(), name=self.kwargs["environment"]
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Environment.objects.none()
        return selectors.environment_list(user=self.request.user, model=self._model())

    def list(self, request: Request, model_name: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=EnvironmentCreateSerializer, responses={201: EnvironmentSerializer, **ERRORS}
    )
    def create(self, request: Request, model_name: str) -> Response:
        body = EnvironmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        environment = deployments.environment_create(
            actor=request.user, model=self._model(), **body.validated_data
        )
        environment = selectors.environment_get(
            user=request.user, model=environment.registered_model, name=environment.name
        )
        return Response(self.get_serializer(environment).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, model_name: str, environment: str) -> Response:
        return Response(self.get_serializer(self._environment()).data)

    @extend_schema(
        request=RollbackRequestSerializer, responses={200: EnvironmentSerializer, **ERRORS}
    )
    @idempotent
    def rollback(self, request: Request, model_name: str, environment: str) -> Response:
        target = self._environment()
        body = RollbackRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deployments.environment_rollback(
            actor=request.user, environment=target, reason=body.validated_data["reason"]
        )
        fresh = selectors.environment_get(
            user=request.user, model=target.registered_model, name=target.name
        )
        return Response(self.get_serializer(fresh).data)

    @extend_schema(
        request=RollbackRequestSerializer, responses={200: EnvironmentSerializer, **ERRORS}
    )
    @idempotent
    def unfreeze(self, request: Request, model_name: str, environment: str) -> Response:
        """Lift the freeze that automatic rollbacks put on the environment."""
        target = self._environment()
        body = RollbackRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rollouts.environment_unfreeze(
            actor=request.user, environment=target, reason=body.validated_data["reason"]
        )
        fresh = selectors.environment_get(
            user=request.user, model=target.registered_model, name=target.name
        )
        return Response(self.get_serializer(fresh).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("export", str, enum=["csv", "parquet"]),
            OpenApiParameter("version", int),
            OpenApiParameter("since", str, description="ISO 8601"),
            OpenApiParameter("until", str, description="ISO 8601"),
            OpenApiParameter("shadow", bool),
            OpenApiParameter("error", bool),
        ],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
    )
    def log(self, request: Request, model_name: str, environment: str) -> HttpResponse:
        """The environment's prediction log, filtered, as CSV or Parquet."""
        target = self._environment()
        table = selectors.serving_log(environment=target, **log_filters(request.query_params))
        return log_export_response(target, table, request.query_params.get("export", "csv"))


class DeploymentViewSet(viewsets.GenericViewSet):
    serializer_class = DeploymentSerializer
    queryset = Deployment.objects.none()

    def _environment(self) -> Environment:
        model = registry_selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])
        return selectors.environment_get(
            user=self.request.user, model=model, name=self.kwargs["environment"]
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Deployment.objects.none()
        return selectors.deployment_list(user=self.request.user, environment=self._environment())

    def list(self, request: Request, model_name: str, environment: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=DeploymentRequestSerializer, responses={202: DeploymentSerializer, **ERRORS}
    )
    @idempotent
    def create(self, request: Request, model_name: str, environment: str) -> Response:
        target = self._environment()
        body = DeploymentRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        number = body.validated_data["version"]
        version = ModelVersion.objects.filter(
            registered_model=target.registered_model, number=number
        ).first()
        if version is None:
            raise DomainError(
                "invalid",
                f"{target.registered_model.name} has no version {number}.",
                details={"version": number},
            )
        plan = {k: v for k, v in body.validated_data.items() if k in rollouts.PLAN_FIELDS}
        deployment = deployments.deployment_start(
            actor=request.user,
            environment=target,
            version=version,
            strategy=body.validated_data["strategy"],
            plan=plan,
        )
        return Response(self.get_serializer(deployment).data, status=status.HTTP_202_ACCEPTED)

    def _act(self, request: Request, pk: str, action: str) -> Response:
        body = RolloutActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deployment = selectors.deployment_get(
            user=request.user, environment=self._environment(), pk=pk
        )
        reason = body.validated_data.get("reason", "")
        if action == "promote":
            rollouts.deployment_promote(
                actor=request.user,
                deployment=deployment,
                reason=reason,
                version=body.validated_data.get("version"),
            )
        elif action == "pause":
            rollouts.deployment_pause(actor=request.user, deployment=deployment, reason=reason)
        elif action == "resume":
            rollouts.deployment_resume(actor=request.user, deployment=deployment)
        else:
            rollouts.deployment_abort(actor=request.user, deployment=deployment, reason=reason)
        fresh = selectors.deployment_get(user=request.user, environment=self._environment(), pk=pk)
        return Response(self.get_serializer(fresh).data)

    @extend_schema(request=RolloutActionSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @idempotent
    def promote(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        """Promote a canary now: the candidate takes all the traffic."""
        return self._act(request, pk, "promote")

    @extend_schema(request=RolloutActionSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @idempotent
    def pause(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        """Hold a canary or shadow where it is (the split stays)."""
        return self._act(request, pk, "pause")

    @extend_schema(request=RolloutActionSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @idempotent
    def resume(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        """Go on with a paused rollout from its current step."""
        return self._act(request, pk, "resume")

    @extend_schema(request=RolloutActionSerializer, responses={200: DeploymentSerializer, **ERRORS})
    @idempotent
    def abort(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        """Stop a rollout: all traffic back to the stable version at once."""
        return self._act(request, pk, "abort")

    def retrieve(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        deployment = selectors.deployment_get(
            user=request.user, environment=self._environment(), pk=pk
        )
        return Response(self.get_serializer(deployment).data)


# --- retraining --------------------------------------------------------------------


def _model(request: Request, name: str) -> RegisteredModel:
    return registry_selectors.model_get(user=request.user, name=name)


def _dataset(request: Request, pk: int | None) -> Dataset | None:
    return None if pk is None else registry_selectors.dataset_get(user=request.user, pk=pk)


class RetrainingPolicyView(APIView):
    """The model's retraining policy: read it (view right), set it (its owner)."""

    @extend_schema(responses={200: RetrainingPolicySerializer, **error_responses(404)})
    def get(self, request: Request, model_name: str) -> Response:
        model = _model(request, model_name)
        policy = selectors.retraining_policy_get(model=model)
        if policy is None:
            raise DomainError(
                "not_found",
                f"{model.name} has no retraining policy yet; PUT one to create it.",
                status=404,
            )
        return Response(RetrainingPolicySerializer(policy).data)

    @extend_schema(
        request=RetrainingPolicyWriteSerializer,
        responses={200: RetrainingPolicySerializer, **error_responses(400, 403, 404, 409)},
    )
    def put(self, request: Request, model_name: str) -> Response:
        model = _model(request, model_name)
        body = RetrainingPolicyWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        for field in ("training_dataset", "evaluation_dataset"):
            if field in changes:
                changes[field] = _dataset(request, changes[field])
        policy = retraining.retraining_policy_set(actor=request.user, model=model, **changes)
        return Response(RetrainingPolicySerializer(policy).data)


class RetrainingRunViewSet(viewsets.GenericViewSet):
    serializer_class = RetrainingRunSerializer
    queryset = RetrainingRun.objects.none()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return RetrainingRun.objects.none()
        model = _model(self.request, self.kwargs["model_name"])
        return selectors.retraining_run_list(user=self.request.user, model=model)

    def list(self, request: Request, model_name: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses={200: RetrainingRunSerializer, **error_responses(404)})
    def retrieve(self, request: Request, model_name: str, pk: str) -> Response:
        run = selectors.retraining_run_get(
            user=request.user, model=_model(request, model_name), pk=pk
        )
        return Response(self.get_serializer(run).data)

    @extend_schema(
        request=RetrainRequestSerializer,
        responses={202: RetrainingRunSerializer, **error_responses(400, 403, 404, 409)},
    )
    @idempotent
    def create(self, request: Request, model_name: str) -> Response:
        """Retrain now: a run is queued (202) or refused with the reason (4xx, nothing queued)."""
        model = _model(request, model_name)
        body = RetrainRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        given: dict[str, Any] = {
            k: data[k]
            for k in ("strategy", "params", "production_window_hours", "seed")
            if k in data
        }
        if "parent" in data:
            given["parent"] = registry_selectors.version_get(
                user=request.user, model=model, number=data["parent"]
            )
        for field in ("training_dataset", "evaluation_dataset"):
            if field in data:
                given[field] = _dataset(request, data[field])
        if "fairness_audit" in data:
            given["fairness_audit"] = get_visible(
                FairnessAudit.objects.select_related("version", "dataset"),
                request.user,
                f"Fairness audit {data['fairness_audit']}",
                pk=data["fairness_audit"],
            )
        run = retraining.retraining_run_request(
            actor=request.user, model=model, reason=data["reason"], force=data["force"], **given
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


class FairnessMitigationViewSet(VersionScoped, viewsets.GenericViewSet):
    """A failed fairness audit's mitigation, at governance's long-standing URLs: the
    door is ``RetrainingRun`` (strategy ``fairness_mitigation``), like every candidate."""

    serializer_class = RetrainingRunSerializer
    queryset = RetrainingRun.objects.none()

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return RetrainingRun.objects.none()
        return selectors.mitigation_run_list(user=self.request.user, version=self._version())

    def list(self, request: Request, model_name: str, number: int) -> Response:
        """The version's fairness mitigations: its ``fairness_mitigation`` retraining runs."""
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=MitigationRequestSerializer,
        responses={202: RetrainingRunSerializer, **error_responses(400, 403, 404, 409)},
    )
    @idempotent
    def create(self, request: Request, model_name: str, number: int, audit_id: int) -> Response:
        """Mitigate a failed audit: a retraining run is queued (202) or refused (4xx)."""
        audit = governance_selectors.audit_get(
            user=request.user, version=self._version(), pk=audit_id
        )
        body = MitigationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = retraining.fairness_mitigation_request(
            actor=request.user, audit=audit, **body.validated_data
        )
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
