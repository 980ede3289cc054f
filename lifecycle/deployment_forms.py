"""The Deployments panel's deploy form: a version, a strategy and that strategy's options.

The form only reads what was typed (numbers, a steps list, ``name=value`` thresholds)
into the plan the API takes (``DeploymentRequestSerializer``: the same field names and
types); every rule on the plan is ``lifecycle.rollouts.rollout_plan``'s, reached through
``deployments.deployment_start`` as the API reaches it, so the UI refuses what the API
refuses, with the same message, shown at the field it names.

Each strategy's options are a form of their own with the strategy as its prefix
(``canary-steps``, ``ab-duration_seconds``): all of them are in the page, so the form
works without JavaScript (a stylesheet rule shows only the chosen strategy's), and
only the chosen strategy's are read.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.conf import settings

from common.errors import DomainError
from lifecycle import rollout_analysis as ra
from lifecycle import rollouts
from lifecycle.models import Strategy
from monitoring import performance

STEPS_HELP = "Steps are whole percentages separated by commas: 5,25,50,100."
THRESHOLDS_HELP = "Thresholds are name=value pairs, e.g. error_rate=0.05, min_requests=50."


class StepsField(forms.CharField):
    """``5,25,50,100`` -> ``[5, 25, 50, 100]`` (the service checks the order and the end)."""

    def to_python(self, value: Any) -> list[int] | None:
        text = super().to_python(value).strip()
        if not text:
            return None
        try:
            return [int(part) for part in text.replace(" ", "").split(",")]
        except ValueError:
            raise forms.ValidationError(STEPS_HELP, code="invalid") from None


class ThresholdsField(forms.CharField):
    """``error_rate=0.05, min_requests=50`` -> ``{"error_rate": 0.05, "min_requests": 50.0}``;
    which names exist and which values are allowed is ``thresholds_valid``'s."""

    widget = forms.Textarea(attrs={"rows": 1, "cols": 40})

    def to_python(self, value: Any) -> dict[str, float] | None:
        text = super().to_python(value).strip()
        if not text:
            return None
        out: dict[str, float] = {}
        for pair in re.split(r"[,;\s]+", text):
            name, sep, number = pair.partition("=")
            try:
                if not sep or not name:
                    raise ValueError(pair)
                out[name] = float(number)
            except ValueError:
                raise forms.ValidationError(
                    f"{pair!r} is not name=value. {THRESHOLDS_HELP}", code="invalid"
                ) from None
        return out


def _number(placeholder: str) -> forms.NumberInput:
    return forms.NumberInput(attrs={"step": "any", "placeholder": placeholder, "size": 8})


class DeployForm(forms.Form):
    version = forms.IntegerField(error_messages={"required": "Choose a version to deploy."})
    strategy = forms.ChoiceField(choices=Strategy.choices, initial=Strategy.DIRECT, required=False)

    def clean_strategy(self) -> str:
        return self.cleaned_data["strategy"] or Strategy.DIRECT


class PlanForm(forms.Form):
    """One strategy's options; ``plan()`` is what the API's request body would hold."""

    strategy: ClassVar[str]
    # Named fields that are thresholds: merged into ``thresholds`` (a named field wins).
    threshold_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, task: str, **kwargs: Any) -> None:
        super().__init__(*args, prefix=self.strategy, **kwargs)
        if "metric" in self.fields:
            names = performance.metric_names(task)
            # Blank: the retraining policy's primary metric, else the task's first.
            self.fields["metric"].choices = [("", f"default (policy's, else {names[0]})")] + [
                (n, n) for n in names
            ]
        if "thresholds" in self.fields:
            names = ", ".join(sorted(rollouts.default_thresholds()))
            self.fields["thresholds"].help_text = f"{THRESHOLDS_HELP} Names: {names}."
            self.fields["thresholds"].widget.attrs["placeholder"] = "e.g. error_rate=0.05"

    @property
    def label(self) -> str:
        return Strategy(self.strategy).label.split(" (")[0]

    def plan(self) -> dict[str, Any]:
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "", [])}
        named = {k: float(data.pop(k)) for k in self.threshold_fields if k in data}
        if named:
            data["thresholds"] = {**(data.get("thresholds") or {}), **named}
        return data


def _float(label: str, default: float | str, help_text: str = "") -> forms.FloatField:
    placeholder = f"{default:g}" if isinstance(default, float) else default
    return forms.FloatField(
        required=False, label=label, widget=_number(placeholder), help_text=help_text
    )


def _count(label: str, placeholder: str) -> forms.IntegerField:
    return forms.IntegerField(required=False, label=label, widget=_number(placeholder))


MIN_REQUESTS = f"{ra.DEFAULT_THRESHOLDS['min_requests']:g}"
BY_TIME_ONLY = "0: by time only"


class BlueGreenPlanForm(PlanForm):
    strategy = Strategy.BLUE_GREEN
    hold_seconds = _float(
        "Preview hold (s)",
        "none",
        "Callers who ask for the version see it this long before the switch.",
    )
    thresholds = ThresholdsField(required=False, label="Replay thresholds")


class CanaryPlanForm(PlanForm):
    strategy = Strategy.CANARY
    threshold_fields = ("min_requests",)
    steps = StepsField(
        required=False,
        label="Steps (%)",
        widget=forms.TextInput(attrs={"size": 12, "placeholder": "5,25,50,100"}),
    )
    step_seconds = _float("Hold each step (s)", settings.ROLLOUT_STEP_SECONDS)
    min_requests = _count("Min requests per step", MIN_REQUESTS)
    metric = forms.ChoiceField(required=False, label="Analysis metric")
    thresholds = ThresholdsField(required=False, label="Thresholds")


class ShadowPlanForm(PlanForm):
    strategy = Strategy.SHADOW
    threshold_fields = ("min_requests",)
    shadow_share = _float("Share scored (0-1]", "1.0")
    duration_seconds = _float("Duration (s)", settings.ROLLOUT_SHADOW_SECONDS)
    end_after_labels = _count("End after N labelled", BY_TIME_ONLY)
    min_requests = _count("Min requests per check", MIN_REQUESTS)
    thresholds = ThresholdsField(required=False, label="Thresholds")


class ABPlanForm(PlanForm):
    strategy = Strategy.AB
    share = _float("Share to B (0-1)", "0.5")
    duration_seconds = _float("Duration (s)", settings.ROLLOUT_AB_SECONDS)
    end_after_labels = _count("End after N labelled", BY_TIME_ONLY)
    step_seconds = _float("Judge every (s)", settings.ROLLOUT_STEP_SECONDS)
    metric = forms.ChoiceField(required=False, label="Metric")


PLAN_FORMS: tuple[type[PlanForm], ...] = (
    BlueGreenPlanForm,
    CanaryPlanForm,
    ShadowPlanForm,
    ABPlanForm,
)


class DeployForms:
    """The deploy form of one environment: the version and strategy, and each strategy's
    options (ids made unique per environment: every card has its own form)."""

    def __init__(self, data: Any = None, *, environment_id: int, task: str) -> None:
        auto_id = f"deploy-{environment_id}-%s"
        self.main = DeployForm(data, auto_id=auto_id)
        self.plans = [cls(data, task=task, auto_id=auto_id) for cls in PLAN_FORMS]
        self.refusal = ""

    @property
    def strategy(self) -> str:
        value = self.main["strategy"].value()
        return value if value in Strategy.values else Strategy.DIRECT

    @property
    def version(self) -> str:
        return str(self.main["version"].value() or "")

    def chosen(self) -> PlanForm | None:
        return next((f for f in self.plans if f.strategy == self.strategy), None)

    def is_valid(self) -> bool:
        plan = self.chosen()
        # Both judged, so that every mistake is shown at once.
        return all([self.main.is_valid(), plan is None or plan.is_valid()])

    def plan(self) -> dict[str, Any]:
        plan = self.chosen()
        return plan.plan() if plan is not None else {}

    def refuse(self, error: DomainError) -> None:
        """Show the service's refusal at the field it names (its message, once), else
        above the form."""
        forms_ = [self.main] + [f for f in [self.chosen()] if f is not None]
        for name in (error.details or {}) if isinstance(error.details, dict) else ():
            for form in forms_:
                if name in form.fields:
                    form.add_error(name, error.message)
                    return
        self.refusal = error.message

    @property
    def errors(self) -> list[str]:
        """What is not about one field: the service's refusal, the forms' own."""
        out = [self.refusal] if self.refusal else []
        for form in [self.main, *self.plans]:
            out += list(form.non_field_errors())
        return out
