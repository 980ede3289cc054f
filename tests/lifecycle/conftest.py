"""Fixtures for retraining tests: the parent version ``credit`` v1 and its training data."""

from __future__ import annotations

from typing import Any

import pytest

from registry.models import ModelVersion
from tests.conftest import ready_version, training_frame
from tests.lifecycle.retraining_support import upload_dataset


@pytest.fixture
def training(model: Any, personas: Any) -> Any:
    return upload_dataset(model, personas.bot, training_frame(600, seed=3))


@pytest.fixture
def parent(model: Any, personas: Any, training: Any) -> ModelVersion:
    """v1 of ``credit``: a logistic regression with its training dataset and target."""
    return ready_version(model, personas.bot, training_dataset=training, target_column="label")
