"""Lifecycle endpoints: evaluations under a version; environments and deployments."""

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

from common.errors import DomainError
from common.idempotency import idempotent
from lifecycle import deployments, selectors, services
from lifecycle.api.serializers import (
    DeploymentRequestSerializer,
    DeploymentSerializer,
    EnvironmentCreateSerializer,
    EnvironmentSerializer,
    ErrorSerializer,
    EvaluationRequestSerializer,
    EvaluationSerializer,
    RollbackRequestSerializer,
)
from lifecycle.models import Deployment, Environment, Evaluation
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel


class EvaluationViewSet(viewsets.GenericViewSet):
    serializer_class = EvaluationSerializer
    queryset = Evaluation.objects.none()

    def _version(self) -> ModelVersion:
        model = registry_selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])
        return registry_selectors.version_get(
            user=self.request.user, model=model, number=self.kwargs["number"]
        )

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Evaluation.objects.none()
        return selectors.evaluation_list(user=self.request.user, version=self._version())

    def list(self, request: Request, model_name: str, number: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

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

    def retrieve(self, request: Request, model_name: str, number: int, pk: str) -> Response:
        job = selectors.evaluation_get(user=request.user, version=self._version(), pk=pk)
        return Response(self.get_serializer(job).data)


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


ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
    409: ErrorSerializer,
}


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
        deployment = deployments.deployment_start(
            actor=request.user,
            environment=target,
            version=version,
            strategy=body.validated_data["strategy"],
        )
        return Response(self.get_serializer(deployment).data, status=status.HTTP_202_ACCEPTED)

    def retrieve(self, request: Request, model_name: str, environment: str, pk: str) -> Response:
        deployment = selectors.deployment_get(
            user=request.user, environment=self._environment(), pk=pk
        )
        return Response(self.get_serializer(deployment).data)
