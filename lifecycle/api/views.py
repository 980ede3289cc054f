"""Evaluation endpoints under a version; retraining policy and runs under a model."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import DomainError
from common.permissions import get_visible
from common.schema import error_responses
from governance.models import FairnessAudit
from lifecycle import retraining, selectors, services
from lifecycle.api.serializers import (
    EvaluationRequestSerializer,
    EvaluationSerializer,
    RetrainingPolicySerializer,
    RetrainingPolicyWriteSerializer,
    RetrainingRunSerializer,
    RetrainRequestSerializer,
)
from lifecycle.models import Evaluation, RetrainingRun
from registry import selectors as registry_selectors
from registry.models import Dataset, ModelVersion, RegisteredModel


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


# --- retraining -------------------------------------------------------------------------


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
