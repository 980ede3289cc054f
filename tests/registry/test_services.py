"""Registry services: rules, locks, immutability, audit events."""

from __future__ import annotations

import io
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from common.errors import DomainError
from common.models import AuditEvent
from registry import services
from registry.models import Alias, Dataset, ModelVersion, RegisteredModel
from registry.selectors import alias_resolve
from tests.conftest import (
    SIGNATURE,
    classifier_bytes,
    create_model,
    csv_bytes,
    grant,
    ready_version,
    register,
    regressor_bytes,
    training_frame,
    validate,
)

pytestmark = pytest.mark.django_db


def upload(model, actor, frame=None, name="train", role="training", fmt="csv"):
    frame = training_frame() if frame is None else frame
    data = csv_bytes(frame) if fmt == "csv" else frame.to_parquet(index=False)
    return services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role=role,
        upload=io.BytesIO(data),
        filename=f"{name}.{fmt}",
    )


def actions(obj) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


class TestModels:
    def test_creating_a_model_makes_the_creator_its_owner_with_every_right(self, personas):
        model = create_model(personas.owner, team=personas.team, tags=["b", "a", "a"])
        assert model.owner == personas.owner
        assert model.tags == ["a", "b"]
        for action in RegisteredModel.PERMISSION_ACTIONS:
            assert RegisteredModel.objects.visible_to(personas.owner, action).filter(pk=model.pk)
        assert actions(model) == ["registry.model.created"]

    def test_the_team_may_maintain_but_not_deploy(self, personas):
        model = create_model(personas.owner, team=personas.team)
        teammate = grant(model, personas.viewer, "viewer")  # unrelated grant
        member = type(teammate).objects.get(pk=personas.owner.pk)
        assert member.has_perm("registry.change_registeredmodel", model)
        personas.validator.groups.add(personas.team)
        validator = type(member).objects.get(pk=personas.validator.pk)
        assert validator.has_perm("registry.register_version", model)
        assert not validator.has_perm("registry.deploy_version", model)

    def test_a_user_without_the_create_right_cannot_create_models(self, personas):
        with pytest.raises(DomainError) as excinfo:
            create_model(personas.outsider)
        assert excinfo.value.status == 403

    def test_model_names_are_unique_slugs(self, personas):
        create_model(personas.owner)
        with pytest.raises(DomainError) as excinfo:
            create_model(personas.owner)
        assert excinfo.value.code == "already_exists"
        with pytest.raises(DomainError, match="lowercase"):
            create_model(personas.owner, name="../etc/passwd")

    def test_only_a_manager_changes_the_risk_tier(self, model, personas):
        maintainer = grant(model, personas.validator, "maintainer")
        services.registered_model_update(actor=maintainer, model=model, description="new")
        with pytest.raises(DomainError) as excinfo:
            services.registered_model_update(actor=maintainer, model=model, risk_tier="low")
        assert excinfo.value.status == 403
        model.refresh_from_db()
        assert model.risk_tier == "high"
        assert model.description == "new"

    def test_a_model_with_a_ready_version_cannot_be_deleted(self, model, personas):
        ready_version(model, personas.bot)
        with pytest.raises(DomainError) as excinfo:
            services.registered_model_delete(actor=personas.owner, model=model)
        assert excinfo.value.code == "model_has_ready_versions"
        assert RegisteredModel.objects.filter(pk=model.pk).exists()

    def test_a_model_without_ready_versions_can_be_deleted_by_its_manager(self, model, personas):
        version = validate(register(model, personas.bot, artifact=b"not a model"))
        assert version.status == "failed"
        with pytest.raises(DomainError):
            services.registered_model_delete(actor=personas.bot, model=model)
        services.registered_model_delete(actor=personas.owner, model=model)
        assert not RegisteredModel.objects.filter(pk=model.pk).exists()
        assert AuditEvent.objects.filter(action="registry.model.deleted").count() == 1

    def test_a_model_another_app_still_refers_to_is_refused_and_nothing_is_deleted(
        self, model, personas
    ):
        # Found by schemathesis: an environment (lifecycle) protects its model.
        from lifecycle import deployments

        failed = validate(register(model, personas.bot, artifact=b"not a model"))
        deployments.environment_create(actor=personas.owner, model=model, name="staging")
        with pytest.raises(DomainError) as excinfo:
            services.registered_model_delete(actor=personas.owner, model=model)
        assert (excinfo.value.code, excinfo.value.status) == ("model_in_use", 409)
        assert excinfo.value.details["referenced_by"] == ["Environment"]
        assert RegisteredModel.objects.filter(pk=model.pk).exists()
        assert ModelVersion.objects.filter(pk=failed.pk).exists()
        assert not AuditEvent.objects.filter(action="registry.model.deleted").exists()


class TestDatasets:
    def test_a_csv_upload_is_stored_as_parquet_with_schema_and_digest(self, model, personas):
        dataset = upload(model, personas.bot)
        assert dataset.version == 1
        assert dataset.row_count == 200
        assert dataset.source_format == "csv"
        assert dataset.schema == [
            {"name": "age", "dtype": "float64"},
            {"name": "income", "dtype": "float64"},
            {"name": "score", "dtype": "float64"},
            {"name": "label", "dtype": "int64"},
        ]
        assert (
            dataset.storage_key
            == f"datasets/sha256/{dataset.sha256[:2]}/{dataset.sha256[2:4]}/{dataset.sha256}.parquet"
        )
        assert upload(model, personas.bot).version == 2

    def test_a_parquet_upload_keeps_its_types(self, model, personas):
        frame = training_frame()
        frame["segment"] = "retail"
        dataset = upload(model, personas.bot, frame=frame, fmt="parquet")
        assert dataset.source_format == "parquet"
        assert {"name": "segment", "dtype": "string"} in dataset.schema

    def test_a_csv_row_with_a_missing_column_is_refused_and_nothing_is_stored(
        self, model, personas
    ):
        bad = b"age,income,score,label\n1,2,3,1\n4,5,6\n"
        with pytest.raises(DomainError) as excinfo:
            services.dataset_upload(
                actor=personas.bot,
                model=model,
                name="bad",
                role="training",
                upload=io.BytesIO(bad),
                filename="bad.csv",
            )
        assert excinfo.value.code == "invalid_dataset"
        assert "Expected 4 columns, got 3" in excinfo.value.message
        assert not Dataset.objects.exists()

    def test_a_viewer_cannot_upload(self, model, personas):
        with pytest.raises(DomainError) as excinfo:
            upload(model, personas.viewer)
        assert excinfo.value.status == 403


class TestRegistration:
    def test_a_registered_version_is_pending_until_validated_then_ready(self, model, personas):
        dataset = upload(model, personas.bot)
        version = register(
            model,
            personas.bot,
            training_dataset=dataset,
            target_column="label",
            metrics={"accuracy": 0.91},
            source_run_id="run-7",
            source_commit="abc1234",
        )
        assert version.status == "pending"
        assert version.number == 1
        assert version.training_dataset_sha256 == dataset.sha256
        version = validate(version)
        assert version.status == "ready"
        assert version.estimator.endswith("LogisticRegression")
        assert version.hyperparameters["C"] == 1.0
        assert version.signature["inputs"] == SIGNATURE
        assert version.registration_job.status == "succeeded"
        assert actions(version) == ["registry.version.registered", "registry.version.ready"]

    def test_a_bad_artifact_fails_with_its_reason(self, model, personas):
        version = validate(register(model, personas.bot, artifact=b"\x80\x04garbage"))
        assert version.status == "failed"
        assert "pickle" in version.status_reason
        assert actions(version)[-1] == "registry.version.failed"

    def test_a_training_dataset_missing_a_signature_column_fails_registration(
        self, model, personas
    ):
        frame = training_frame().drop(columns=["income"])
        dataset = upload(model, personas.bot, frame=frame)
        version = validate(
            register(model, personas.bot, training_dataset=dataset, target_column="label")
        )
        assert version.status == "failed"
        assert "no column(s) ['income']" in version.status_reason

    def test_numbers_are_never_reused(self, model, personas):
        first = validate(register(model, personas.bot, artifact=b"junk"))
        second = register(model, personas.bot)
        assert (first.number, second.number) == (1, 2)
        model.refresh_from_db()
        assert model.last_version_number == 2

    def test_a_regression_model_refuses_a_classifier_but_takes_a_regressor(self, personas):
        model = create_model(personas.owner, name="house", task="regression")
        failed = validate(register(model, personas.owner))
        assert "not a regressor" in failed.status_reason
        assert ready_version(model, personas.owner, artifact=regressor_bytes()).number == 2

    def test_the_parent_must_exist(self, model, personas):
        with pytest.raises(DomainError, match="parent version 9"):
            register(model, personas.bot, parent_number=9)
        assert not ModelVersion.objects.exists()

    def test_a_dataset_of_another_model_cannot_be_the_training_data(self, model, personas):
        other = create_model(personas.owner, name="other")
        dataset = upload(other, personas.owner)
        with pytest.raises(DomainError, match="another model"):
            register(model, personas.bot, training_dataset=dataset, target_column="label")

    def test_a_viewer_cannot_register(self, model, personas):
        with pytest.raises(DomainError) as excinfo:
            register(model, personas.viewer)
        assert excinfo.value.status == 403
        assert not ModelVersion.objects.exists()

    def test_a_redelivered_validation_message_changes_nothing(self, model, personas):
        from registry.tasks import validate_version

        version = ready_version(model, personas.bot)
        validate_version.run(version.registration_job.pk)
        version.registration_job.refresh_from_db()
        assert version.registration_job.attempts == 1
        assert actions(version).count("registry.version.ready") == 1

    def test_an_attempt_that_lost_its_claim_records_nothing(self, model, personas):
        from common.jobs import JobLost, job_claim
        from registry.models import RegistrationJob

        version = register(model, personas.bot)
        job = job_claim(RegistrationJob, version.registration_job.pk)
        RegistrationJob.objects.filter(pk=job.pk).update(attempts=5)  # the sweep took it over
        with pytest.raises(JobLost):
            services.model_version_validate(job=job)
        version.refresh_from_db()
        assert version.status == "pending"

    def test_only_description_and_tags_of_a_version_change(self, model, personas):
        version = ready_version(model, personas.bot)
        services.model_version_update(
            actor=personas.owner, version=version, description="better", tags=["x"]
        )
        for field in ("signature", "artifact_sha256", "parent", "metrics"):
            with pytest.raises(DomainError) as excinfo:
                services.model_version_update(actor=personas.owner, version=version, **{field: {}})
            assert excinfo.value.code == "immutable"
        version.refresh_from_db()
        assert (version.description, version.tags) == ("better", ["x"])
        assert version.signature["inputs"] == SIGNATURE

    def test_the_same_artifact_is_stored_once(self, model, personas):
        from common.storage import blob_storage

        first = register(model, personas.bot)
        second = register(model, personas.bot)
        assert first.artifact_key == second.artifact_key
        folder = blob_storage("artifacts").path(first.artifact_key).rsplit("/", 1)[0]
        import os

        assert os.listdir(folder) == [first.artifact_key.rsplit("/", 1)[1]]


class TestAliases:
    def test_an_alias_points_at_a_ready_version_and_moves(self, model, personas):
        v1 = ready_version(model, personas.bot)
        v2 = ready_version(model, personas.bot)
        services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
        assert alias_resolve(user=personas.viewer, model_name="credit", alias="staging") == v1
        services.alias_set(actor=personas.bot, model=model, name="staging", version_number=2)
        assert alias_resolve(user=personas.viewer, model_name="credit", alias="staging") == v2
        events = AuditEvent.objects.filter(action="registry.alias.set").order_by("seq")
        assert [e.after["version"] for e in events] == [1, 2]
        assert events[1].before["version"] == v1.pk

    def test_a_pending_or_failed_version_cannot_be_aliased(self, model, personas):
        register(model, personas.bot)
        with pytest.raises(DomainError) as excinfo:
            services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
        assert excinfo.value.code == "version_not_ready"
        assert not Alias.objects.exists()

    def test_a_protected_alias_needs_the_deploy_right(self, model, personas, without_alias_gates):
        ready_version(model, personas.bot)
        with pytest.raises(DomainError) as excinfo:
            services.alias_set(
                actor=personas.bot,
                model=model,
                name="production",
                version_number=1,
                protected=True,
            )
        assert excinfo.value.status == 403
        services.alias_set(
            actor=personas.owner, model=model, name="production", version_number=1, protected=True
        )
        with pytest.raises(DomainError):
            services.alias_set(actor=personas.bot, model=model, name="production", version_number=1)
        with pytest.raises(DomainError):
            services.alias_delete(actor=personas.bot, model=model, name="production")
        deployer = grant(model, personas.validator, "deployer")
        with pytest.raises(DomainError, match="manage"):
            services.alias_set(
                actor=deployer, model=model, name="production", version_number=1, protected=False
            )
        # Deleting a flagged alias takes its protection away: administrators only
        # (tests/security/test_governance.py); here no name is always protected.
        with pytest.raises(DomainError) as excinfo:
            services.alias_delete(actor=deployer, model=model, name="production")
        assert excinfo.value.code == "protection_admin_only"
        admin = User.objects.create_superuser("admin", "admin@example.com", "x")
        services.alias_delete(actor=admin, model=model, name="production")
        assert not Alias.objects.exists()

    def test_alias_names_are_validated(self, model, personas):
        ready_version(model, personas.bot)
        with pytest.raises(DomainError, match="lowercase"):
            services.alias_set(actor=personas.bot, model=model, name="Prod/../x", version_number=1)

    def test_resolving_an_invisible_or_missing_alias_is_not_found(self, model, personas):
        ready_version(model, personas.bot)
        services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
        for user, name in ((personas.outsider, "staging"), (personas.viewer, "missing")):
            with pytest.raises(DomainError) as excinfo:
                alias_resolve(user=user, model_name="credit", alias=name)
            assert excinfo.value.status == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_get_different_numbers(personas):
    model = create_model(personas.owner)
    numbers, errors = [], []
    barrier = threading.Barrier(4)

    def work():
        try:
            barrier.wait()
            version = services.model_version_register(
                actor=personas.owner,
                model=model,
                artifact=io.BytesIO(classifier_bytes()),
            )
            numbers.append(version.number)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4]
    assert ModelVersion.objects.filter(registered_model=model).count() == 4
    # every event landed in one unbroken chain
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert connection.vendor in ("postgresql", "sqlite")
