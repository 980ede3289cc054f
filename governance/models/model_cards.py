"""Model cards: the narrative half of a version's card (the rest is generated)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from common.models import TimeStampedModel
from common.permissions import PermissionManager
from registry.models import ModelVersion

__all__ = ["ModelCard"]


class ModelCard(TimeStampedModel):
    """The narrative half of a version's model card; the rest is generated.

    One per version (a card is versioned with the model version it describes).
    ``sha256`` is the digest of the full card as last filed as evidence.
    """

    permission_root = "version__registered_model"
    NARRATIVE_FIELDS = (
        "intended_use",
        "out_of_scope_use",
        "limitations",
        "ethical_considerations",
        "caveats",
    )
    # What a card needs before it counts as complete evidence.
    REQUIRED_FIELDS = ("intended_use", "out_of_scope_use", "limitations", "ethical_considerations")

    version = models.OneToOneField(
        ModelVersion, on_delete=models.PROTECT, related_name="model_card"
    )
    intended_use = models.TextField(blank=True)
    out_of_scope_use = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    ethical_considerations = models.TextField(blank=True)
    caveats = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    sha256 = models.CharField(max_length=64, blank=True)

    objects = PermissionManager()

    def __str__(self) -> str:
        return f"model card of {self.version}"

    @property
    def missing_fields(self) -> list[str]:
        return [f for f in self.REQUIRED_FIELDS if not getattr(self, f).strip()]
