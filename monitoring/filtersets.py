import django_filters

from monitoring.choices import AlertKind, AlertStatus
from monitoring.models import Alert


class AlertFilterSet(django_filters.FilterSet):
    """Used by the API alert list and the dashboard's alert list."""

    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    kind = django_filters.ChoiceFilter(choices=AlertKind.choices)
    model = django_filters.CharFilter(field_name="registered_model__name")

    class Meta:
        model = Alert
        fields = ["status", "kind", "model"]
