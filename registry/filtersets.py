"""One FilterSet per model, shared by the UI lists and the API lists."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from common.filters import filter_tag
from registry.choices import DatasetRole, RiskTier, Task, VersionStatus
from registry.models import Dataset, ModelVersion, RegisteredModel


class RegisteredModelFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    task = django_filters.ChoiceFilter(choices=Task.choices)
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)
    tag = django_filters.CharFilter(field_name="tags", method=filter_tag, label="Tag")
    owner = django_filters.CharFilter(field_name="owner__username")
    team = django_filters.CharFilter(field_name="team__name")

    class Meta:
        model = RegisteredModel
        fields = ["q", "task", "risk_tier", "tag", "owner", "team"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class ModelVersionFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    tag = django_filters.CharFilter(field_name="tags", method=filter_tag)
    created_by = django_filters.CharFilter(field_name="created_by__username")

    class Meta:
        model = ModelVersion
        fields = ["status", "tag", "created_by"]


class DatasetFilterSet(django_filters.FilterSet):
    model = django_filters.CharFilter(field_name="registered_model__name")
    name = django_filters.CharFilter()
    role = django_filters.ChoiceFilter(choices=DatasetRole.choices)

    class Meta:
        model = Dataset
        fields = ["model", "name", "role"]
