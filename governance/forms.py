"""Forms of the governance UI."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.choices import (
    SignOffDecision,
    SignOffMeaning,
    SignOffRole,
)
from governance.fairness_audits import MAX_BOOTSTRAP, MAX_SENSITIVE_COLUMNS
from governance.models import ModelCard
from registry import selectors as registry_selectors
from registry.models import ModelVersion


class FairnessAuditForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type]
    target_column = forms.CharField(max_length=200)
    sensitive_features = forms.CharField(
        max_length=500, help_text="Comma-separated columns, e.g. sex, age_band"
    )
    bootstrap = forms.IntegerField(
        min_value=0,
        max_value=MAX_BOOTSTRAP,
        required=False,
        initial=0,
        help_text="Resamples for 95% intervals (0: none)",
    )

    def __init__(self, *args: Any, version: ModelVersion, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = registry_selectors.dataset_list(user=user).filter(
            registered_model=version.registered_model
        )
        if version.target_column:
            self.fields["target_column"].initial = version.target_column

    def clean_sensitive_features(self) -> list[str]:
        names = [n.strip() for n in self.cleaned_data["sensitive_features"].split(",") if n.strip()]
        if not 1 <= len(names) <= MAX_SENSITIVE_COLUMNS:
            raise forms.ValidationError(f"Name 1 to {MAX_SENSITIVE_COLUMNS} columns.")
        return names


class ModelCardForm(forms.Form):
    intended_use = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    out_of_scope_use = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    limitations = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    ethical_considerations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False
    )
    caveats = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    field_order = list(ModelCard.NARRATIVE_FIELDS)


class SignOffForm(forms.Form):
    """The electronic signature: decision, meaning, comment and the signer's password."""

    role = forms.ChoiceField(required=False, help_text="Leave empty for your first open role")
    decision = forms.ChoiceField(choices=SignOffDecision.choices)
    meaning = forms.ChoiceField(choices=SignOffMeaning.choices)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign.",
    )

    def __init__(
        self,
        *args: Any,
        roles: list[str] | None = None,
        sensitive_inputs: list[str] | None = None,
        overridable: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if overridable:
            # Shown only to the policy's evidence_override_by role while required
            # evidence failed or is missing (governance.selectors.approval_refusal).
            self.fields["override_justification"] = forms.CharField(
                required=False,
                max_length=4000,
                widget=forms.Textarea(attrs={"rows": 3}),
                label=f"Override {', '.join(overridable)}: written justification",
                help_text=(
                    "Needed to approve for deployment although this evidence failed or is "
                    "missing; recorded on your sign-off and in the audit trail."
                ),
            )
        self.fields["role"].choices = [("", "—")] + [(r, SignOffRole(r).label) for r in roles or []]
        if sensitive_inputs:
            # Shown only for a version that reads sensitive attributes at prediction time.
            self.fields["acknowledge_sensitive_inputs"] = forms.BooleanField(
                required=False,
                label=(
                    f"I acknowledge that this version uses {', '.join(sensitive_inputs)} "
                    "at prediction time"
                ),
                help_text="Required of the role the policy names, to approve.",
            )
        self.order_fields(
            [
                "role",
                "decision",
                "meaning",
                "acknowledge_sensitive_inputs",
                "comment",
                "override_justification",
                "password",
            ]
        )
