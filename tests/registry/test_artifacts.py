"""The artifact gate: only skops files of allow-listed types, fitted, with predict."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import zipfile
from pathlib import Path

import joblib
import pytest
import skops.io as sio
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from registry.artifacts import ArtifactRejected, inspect_artifact, is_allowed, load_estimator
from tests.conftest import FEATURES, SIGNATURE, classifier_bytes, training_frame


def write(tmp_path: Path, data: bytes, name: str = "model.skops") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def inspect(path: str, task: str = "classification", **kwargs):
    kwargs.setdefault("declared_inputs", SIGNATURE)
    kwargs.setdefault("dataset_schema", None)
    kwargs.setdefault("target", "")
    return inspect_artifact(path, task=task, **kwargs)


def reason(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.reason


def test_a_fitted_skops_classifier_is_accepted_with_its_signature(tmp_path):
    report = inspect(write(tmp_path, classifier_bytes()))
    assert report.estimator_class == "sklearn.linear_model._logistic.LogisticRegression"
    assert report.signature["inputs"] == SIGNATURE
    assert report.signature["output"] == {"kind": "label", "classes": [0, 1], "probabilities": True}
    assert report.hyperparameters["C"] == 1.0
    assert report.hyperparameters["max_iter"] == 200


def test_a_pickle_renamed_skops_is_refused_before_loading(tmp_path, monkeypatch):
    payload = pickle.dumps(LogisticRegression())
    loaded = []
    monkeypatch.setattr(sio, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ArtifactRejected) as excinfo:
        inspect(write(tmp_path, payload))
    assert "pickle" in reason(excinfo)
    assert loaded == []


def test_an_old_protocol_pickle_is_refused(tmp_path):
    with pytest.raises(ArtifactRejected, match="pickle"):
        inspect(write(tmp_path, pickle.dumps({"a": 1}, protocol=0)))


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_joblib_files_are_refused_by_content(tmp_path, compress):
    buffer = io.BytesIO()
    joblib.dump(Ridge(), buffer, compress=compress)
    with pytest.raises(ArtifactRejected, match="joblib|pickle"):
        inspect(write(tmp_path, buffer.getvalue(), "model.skops"))


def test_a_skops_file_naming_a_type_off_the_allow_list_is_refused(tmp_path):
    dangerous = FunctionTransformer(func=os.system)
    with pytest.raises(ArtifactRejected) as excinfo:
        inspect(write(tmp_path, sio.dumps(dangerous)))
    assert "allow-list" in reason(excinfo)
    assert "system" in reason(excinfo)


def test_a_forged_schema_naming_builtins_eval_is_refused(tmp_path):
    original = zipfile.ZipFile(io.BytesIO(classifier_bytes()))
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w") as out:
        for item in original.namelist():
            data = original.read(item)
            if item == "schema.json":
                data = data.replace(b'"__module__": "builtins"', b'"__module__": "builtins"', 1)
                data = data.replace(
                    b'"__class__": "LogisticRegression"', b'"__class__": "eval"', 1
                ).replace(b'"sklearn.linear_model._logistic"', b'"builtins"', 1)
            out.writestr(item, data)
    with pytest.raises(ArtifactRejected, match="builtins.eval"):
        inspect(write(tmp_path, forged.getvalue()))


def test_a_truncated_skops_file_is_refused(tmp_path):
    data = classifier_bytes()
    with pytest.raises(ArtifactRejected, match="truncated|corrupt"):
        inspect(write(tmp_path, data[: len(data) // 2]))


def test_random_bytes_are_not_a_skops_file(tmp_path):
    with pytest.raises(ArtifactRejected, match="not a skops file"):
        inspect(write(tmp_path, b"hello world, not a model"))


def test_a_zip_without_a_skops_schema_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.pkl", pickle.dumps(1))
    with pytest.raises(ArtifactRejected, match="schema.json"):
        inspect(write(tmp_path, buffer.getvalue()))


def test_an_unfitted_estimator_is_refused(tmp_path):
    with pytest.raises(ArtifactRejected, match="not fitted"):
        inspect(write(tmp_path, sio.dumps(LogisticRegression())))


def test_an_object_without_predict_is_refused(tmp_path):
    scaler = StandardScaler().fit(training_frame()[FEATURES])
    with pytest.raises(ArtifactRejected, match="no predict"):
        inspect(write(tmp_path, sio.dumps(scaler)))


def test_a_regressor_cannot_be_registered_for_a_classification_model(tmp_path):
    frame = training_frame()
    ridge = Ridge().fit(frame[FEATURES], frame["score"])
    with pytest.raises(ArtifactRejected, match="not a classifier"):
        inspect(write(tmp_path, sio.dumps(ridge)))


def test_a_classifier_cannot_be_registered_for_a_regression_model(tmp_path):
    with pytest.raises(ArtifactRejected, match="not a regressor"):
        inspect(write(tmp_path, classifier_bytes()), task="regression")


def test_a_clusterer_is_refused_by_the_allow_list_before_it_is_built(tmp_path):
    kmeans = KMeans(n_clusters=2, n_init=1, random_state=0).fit(training_frame()[FEATURES])
    with pytest.raises(ArtifactRejected, match=r"allow-list: sklearn\.cluster\._kmeans\.KMeans"):
        inspect(write(tmp_path, sio.dumps(kmeans)), task="regression")


def test_the_signature_must_name_the_features_the_model_was_fitted_on(tmp_path):
    declared = [{"name": n, "dtype": "float64"} for n in ("age", "income", "other")]
    with pytest.raises(ArtifactRejected, match="differ from those the model was fitted on"):
        inspect(write(tmp_path, classifier_bytes()), declared_inputs=declared)


def test_the_signature_must_match_the_training_dataset_schema(tmp_path):
    schema = [
        {"name": "age", "dtype": "float64"},
        {"name": "income", "dtype": "string"},
        {"name": "score", "dtype": "float64"},
        {"name": "label", "dtype": "int64"},
    ]
    with pytest.raises(ArtifactRejected, match=r"income \(float64 vs string\)"):
        inspect(write(tmp_path, classifier_bytes()), dataset_schema=schema, target="label")


def test_a_training_dataset_missing_a_signature_column_is_refused(tmp_path):
    schema = [{"name": "age", "dtype": "float64"}, {"name": "label", "dtype": "int64"}]
    with pytest.raises(ArtifactRejected, match="no column"):
        inspect(write(tmp_path, classifier_bytes()), dataset_schema=schema, target="label")


def test_the_signature_is_derived_from_the_model_when_not_declared(tmp_path):
    report = inspect(write(tmp_path, classifier_bytes()), declared_inputs=None)
    assert [c["name"] for c in report.signature["inputs"]] == FEATURES


def test_the_model_must_predict_on_training_rows(tmp_path):
    frame = training_frame()
    frame["age"] = "not a number"
    with pytest.raises(ArtifactRejected, match="fails to predict"):
        inspect(write(tmp_path, classifier_bytes()), sample=frame.head(5))


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("sklearn.pipeline.Pipeline", True),
        ("numpy.ndarray", True),
        ("builtins.dict", True),
        ("builtins.eval", False),
        ("posix.system", False),
        ("numpy.load", False),
        ("sklearnx.Thing", False),
        ("collections.OrderedDict", True),
    ],
)
def test_allow_list(name, allowed):
    assert is_allowed(name) is allowed


def test_gzip_of_a_skops_file_is_not_accepted(tmp_path):
    with pytest.raises(ArtifactRejected):
        load_estimator(write(tmp_path, gzip.compress(classifier_bytes())))


def test_a_classifier_without_classes_is_refused_since_they_fix_its_positive_class(tmp_path):
    frame = training_frame()
    model = LogisticRegression(max_iter=200).fit(frame[FEATURES], frame["label"])
    del model.classes_
    with pytest.raises(ArtifactRejected) as excinfo:
        inspect(write(tmp_path, sio.dumps(model)))
    assert "has no classes_" in reason(excinfo)


@pytest.mark.parametrize("classes", [[2, 10], ["no", "yes"], [False, True]])
def test_the_signature_records_the_classifiers_classes_in_their_own_type(tmp_path, classes):
    import numpy as np

    frame = training_frame()
    labels = np.asarray(classes)[frame["label"].to_numpy()]
    model = LogisticRegression(max_iter=200).fit(frame[FEATURES], labels)
    report = inspect(write(tmp_path, sio.dumps(model)))
    recorded = report.signature["output"]["classes"]
    assert list(map(repr, recorded)) == list(map(repr, classes))  # True, not 1
