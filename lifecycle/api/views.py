"""Evaluation endpoints under a version."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from lifecycle import selectors, services
from lifecycle.api.serializers import EvaluationRequestSerializer, EvaluationSerializer
from lifecycle.models import Evaluation
from registry import selectors as registry_selectors
from registry.models import ModelVersion


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
