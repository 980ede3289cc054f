"""Views scoped to one model version (``/models/{model_name}/versions/{number}/...``).

``VersionScoped`` resolves the version through the registry's selectors (404 outside
the caller's grants). ``VersionJobs`` is the shape every version-scoped job endpoint
shares (evaluations, explanations, fairness audits): list, retrieve, and a ``create``
of the subclass's own that starts the job through its service and answers ``202``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from registry import selectors as registry_selectors
from registry.models import ModelVersion


class VersionScoped:
    request: Request
    kwargs: dict[str, Any]

    def _version(self) -> ModelVersion:
        model = registry_selectors.model_get(user=self.request.user, name=self.kwargs["model_name"])
        return registry_selectors.version_get(
            user=self.request.user, model=model, number=self.kwargs["number"]
        )


class VersionJobs(VersionScoped, viewsets.GenericViewSet):
    """A version's jobs of one kind. Subclasses set ``queryset`` (``.none()``, for the
    schema), ``serializer_class``, the two selectors, and write ``create``."""

    list_selector: ClassVar[Callable[..., Any]]  # (user=, version=) -> queryset
    get_selector: ClassVar[Callable[..., Any]]  # (user=, version=, pk=) -> job

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return type(self).list_selector(user=self.request.user, version=self._version())

    def list(self, request: Request, model_name: str, number: int) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, model_name: str, number: int, pk: str) -> Response:
        job = type(self).get_selector(user=request.user, version=self._version(), pk=pk)
        return Response(self.get_serializer(job).data)
