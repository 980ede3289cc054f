"""A retraining run's data (lifecycle/training_data.py, pure): columns checked first and
named, the row cap, the seeded hold-out, the digests and the environment record."""

from __future__ import annotations

import hashlib
import math
import platform

import numpy as np
import pandas as pd
import pytest
import scipy
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as hs
from sklearn.model_selection import train_test_split

from lifecycle import training_data as td
from lifecycle.training_data import TrainingDataError

FEATURES = ["a", "b", "c"]


def dataset(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.choice(["red", "green"], size=n),
            "notes": "unused",
        }
    )
    frame["y"] = (frame["a"] > 0.8).astype("int64")  # about one positive in five
    return frame


def production(n: int = 100, seed: int = 1, *, shuffle_times: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC")
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "timestamp": times,
            "a": rng.normal(size=n) + 1,
            "b": rng.normal(size=n),
            "c": rng.choice(["red", "green"], size=n),
            "prediction": 0,
        }
    )
    frame["label"] = (frame["a"] > 0.8).astype("int64")
    if shuffle_times:
        frame = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    return frame


def assemble(**kwargs):
    defaults = {"features": FEATURES, "target": "y", "task": "classification", "seed": 5}
    return td.assemble(**{**defaults, **kwargs})


# --------------------------------------------------------------------------- columns


def test_a_missing_feature_is_named_with_the_input_it_is_missing_from():
    with pytest.raises(
        TrainingDataError, match="The feature column 'b' is missing from the training dataset"
    ):
        assemble(dataset=dataset().drop(columns="b"))


def test_a_missing_target_is_named_as_the_target():
    with pytest.raises(
        TrainingDataError, match="The target column 'y' is missing from the training dataset"
    ):
        assemble(dataset=dataset().drop(columns="y"))


def test_production_rows_without_their_label_are_refused_by_name():
    with pytest.raises(
        TrainingDataError, match="The target column 'label' is missing from the production rows"
    ):
        assemble(dataset=dataset(), production=production().drop(columns="label"))


def test_several_missing_columns_are_counted():
    with pytest.raises(
        TrainingDataError,
        match=r"feature column 'a' is missing from the training dataset \(and 2 more: \['c', 'y'\]\)",
    ):
        assemble(dataset=dataset().drop(columns=["a", "c", "y"]))


def test_a_feature_numeric_in_one_input_and_text_in_the_other_is_refused():
    rows = production().assign(b=lambda f: f["b"].astype(str))
    with pytest.raises(TrainingDataError, match="feature 'b' is float64 in the training dataset"):
        assemble(dataset=dataset(), production=rows)


def test_a_missing_target_value_is_counted():
    frame = dataset()
    frame.loc[[3, 9], "y"] = np.nan
    with pytest.raises(TrainingDataError, match="target 'y' has 2 missing values in the training"):
        assemble(dataset=frame)


def test_a_run_needs_some_rows():
    with pytest.raises(TrainingDataError, match="training dataset, production rows, or both"):
        assemble()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_rows": 1}, "max_rows must be between 2"),
        ({"max_rows": 10.5}, "max_rows must be a whole number"),
        ({"holdout_fraction": 0.95}, "holdout_fraction must be between 0 and 0.9"),
        ({"holdout_fraction": "0.2"}, "holdout_fraction must be a number"),
        ({"seed": -1}, "seed must be between"),
        ({"task": "ranking"}, "Unknown task"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(TrainingDataError, match=message):
        assemble(dataset=dataset(), **kwargs)


# --------------------------------------------------------------------------- labels


def test_string_labels_from_monitoring_take_the_datasets_integer_type():
    rows = production().assign(label=lambda f: f["label"].astype(str))
    data = assemble(dataset=dataset(), production=rows, holdout_fraction=0)
    assert data.train["y"].dtype == np.int64
    assert set(data.train["y"]) == {0, 1}


def test_a_label_that_does_not_fit_the_targets_type_is_refused():
    rows = production().assign(label=lambda f: np.where(f["label"] == 1, "yes", "no"))
    with pytest.raises(TrainingDataError, match="production label 'yes' does not match"):
        assemble(dataset=dataset(), production=rows)


def test_production_labels_alone_take_the_parents_class_type():
    rows = production().assign(label=lambda f: f["label"].astype(str))
    data = assemble(production=rows, classes=[0, 1], holdout_fraction=0)
    assert data.train["y"].tolist() == data.train["y"].astype(int).tolist()
    assert data.train["y"].dtype.kind == "i"


# --------------------------------------------------------------------------- cap


def test_without_a_cap_every_row_is_kept_dataset_first_then_production_oldest_first():
    rows = production()
    data = assemble(dataset=dataset(), production=rows, holdout_fraction=0)
    assert len(data.train) == 500
    assert data.train_sources.tolist() == ["dataset"] * 400 + ["production"] * 100
    oldest_first = rows.sort_values("timestamp")
    assert data.production_train()["a"].tolist() == oldest_first["a"].tolist()
    assert list(data.train.columns) == [*FEATURES, "y"]
    assert data.holdout is None


def test_carried_columns_ride_along_in_every_frame_but_are_never_features():
    """A policy's sensitive columns stay in the rows (the hold-out audits by them)."""
    frame = dataset()
    frame["sex"] = np.where(frame["b"] > 0, "F", "M")
    data = assemble(dataset=frame, carry=["sex", "a", "y", "sex"])
    assert list(data.train.columns) == list(data.holdout.columns) == [*FEATURES, "sex", "y"]
    assert list(data.X_train.columns) == list(data.X_holdout.columns) == FEATURES
    assert (data.record["carried"], data.record["not_carried"]) == (["sex"], [])
    plain = assemble(dataset=frame)
    assert data.holdout["a"].tolist() == plain.holdout["a"].tolist()  # the same split
    sex_of = dict(zip(frame["a"], frame["sex"], strict=True))  # each row keeps its own
    assert data.holdout["sex"].tolist() == [sex_of[a] for a in data.holdout["a"]]
    # Production rows without the column: nothing is carried, and the record says so.
    mixed = assemble(dataset=frame, production=production(), carry=["sex"])
    assert "sex" not in mixed.train.columns
    assert (mixed.record["carried"], mixed.record["not_carried"]) == ([], ["sex"])


def test_the_cap_keeps_the_newest_production_rows_then_samples_the_dataset():
    rows = production(100)
    data = assemble(dataset=dataset(), production=rows, max_rows=150, holdout_fraction=0)
    assert data.record["cap"]["kept"] == {"dataset": 50, "production": 100}
    small = assemble(dataset=dataset(), production=rows, max_rows=60, holdout_fraction=0)
    assert small.record["cap"]["kept"] == {"dataset": 0, "production": 60}
    newest = rows.sort_values("timestamp").tail(60)
    assert small.production_train()["a"].tolist() == newest["a"].tolist()


def test_production_rows_without_timestamps_count_the_last_rows_as_newest():
    rows = production(100, shuffle_times=False).drop(columns="timestamp")
    data = assemble(production=rows, max_rows=30, holdout_fraction=0)
    assert data.train["a"].tolist() == rows["a"].iloc[70:].tolist()


def test_the_dataset_sample_is_seeded():
    frame = dataset()
    first = assemble(dataset=frame, max_rows=100, holdout_fraction=0, seed=1)
    again = assemble(dataset=frame, max_rows=100, holdout_fraction=0, seed=1)
    other = assemble(dataset=frame, max_rows=100, holdout_fraction=0, seed=2)
    pd.testing.assert_frame_equal(first.train, again.train)
    assert first.record["train"]["sha256"] == again.record["train"]["sha256"]
    assert first.record["train"]["sha256"] != other.record["train"]["sha256"]
    # The kept rows stay in the dataset's order.
    positions = [frame.index[frame["a"] == v][0] for v in first.train["a"]]
    assert positions == sorted(positions)


def test_cap_rows_mirrors_numpys_seeded_sample():
    kept, none = td.cap_rows(400, None, max_rows=100, seed=9)
    expected = np.sort(np.random.default_rng(9).choice(400, size=100, replace=False))
    assert np.array_equal(kept, expected) and len(none) == 0


# --------------------------------------------------------------------------- hold-out


def test_the_hold_out_comes_from_production_rows_when_there_are_any():
    data = assemble(dataset=dataset(), production=production(), holdout_fraction=0.2)
    assert set(data.holdout_sources) == {"production"}
    assert data.record["holdout"]["from"] == "production"
    assert data.record["holdout"]["rows"] == {"dataset": 0, "production": 20}
    assert data.record["train"]["rows"] == {"dataset": 400, "production": 80}


def test_the_hold_out_is_stratified_and_seeded_on_the_dataset_alone():
    frame = dataset()
    data = assemble(dataset=frame, holdout_fraction=0.25)
    assert data.record["holdout"]["from"] == "dataset"
    assert data.record["holdout"]["stratified"] is True
    positions = np.arange(len(frame))
    train, test = train_test_split(
        positions, test_size=100, random_state=5, shuffle=True, stratify=frame["y"]
    )
    assert data.holdout["a"].tolist() == frame["a"].iloc[np.sort(test)].tolist()
    assert data.train["a"].tolist() == frame["a"].iloc[np.sort(train)].tolist()
    share = frame["y"].mean()
    assert data.holdout["y"].mean() == pytest.approx(share, abs=0.01)
    assert data.record["holdout"]["sha256"] == td.frame_digest(data.holdout)


def test_a_class_with_one_row_gets_a_plain_split_and_the_record_says_why():
    frame = dataset()
    frame.loc[0, "y"] = 7
    data = assemble(dataset=frame, holdout_fraction=0.2)
    assert data.record["holdout"]["stratified"] is False
    assert data.record["holdout"]["not_stratified_because"] == "class 7 has a single row"


def test_regression_is_never_stratified():
    frame = dataset().assign(y=lambda f: f["a"] * 2.0)
    data = assemble(dataset=frame, task="regression", holdout_fraction=0.2)
    assert data.record["holdout"]["stratified"] is False
    assert len(data.holdout) == 80


def test_a_hold_out_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(TrainingDataError, match="leaves no row to train on"):
        assemble(production=production(3), holdout_fraction=0.9)


@settings(max_examples=60, deadline=None)
@given(
    n=hs.integers(min_value=2, max_value=300),
    fraction=hs.floats(min_value=0.01, max_value=0.9),
    seed=hs.integers(min_value=0, max_value=2**32 - 1),
    classes=hs.integers(min_value=1, max_value=4),
)
def test_the_hold_out_split_is_a_seeded_partition_of_scikit_learns_size(n, fraction, seed, classes):
    labels = pd.Series(np.arange(n) % classes)
    if math.ceil(fraction * n) >= n:
        with pytest.raises(TrainingDataError):
            td.holdout_split(labels, fraction=fraction, seed=seed, stratify=True)
        return
    train, test, why_not = td.holdout_split(labels, fraction=fraction, seed=seed, stratify=True)
    assert len(test) == td.holdout_size(n, fraction) == math.ceil(fraction * n)
    assert sorted([*train, *test]) == list(range(n))
    assert list(train) == sorted(train) and list(test) == sorted(test)
    again = td.holdout_split(labels, fraction=fraction, seed=seed, stratify=True)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    if why_not is None and classes > 1:
        assert set(labels.iloc[test]) == set(range(classes))  # every class is held out


# --------------------------------------------------------------------------- digests


def test_the_digest_ignores_the_index_and_the_integer_width():
    frame = pd.DataFrame({"x": [1, 2, 3], "s": ["a", None, "c"], "f": [0.5, np.nan, 2.0]})
    reindexed = frame.set_axis([10, 11, 12])
    narrow = frame.astype({"x": "int32", "f": "float32"})
    assert td.frame_digest(frame) == td.frame_digest(reindexed) == td.frame_digest(narrow)


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(x=[1, 2, 4]),
        lambda f: f.assign(f=[0.5, 0.0, 2.0]),
        lambda f: f.rename(columns={"x": "z"}),
        lambda f: f[["s", "x", "f"]],
        lambda f: f.iloc[::-1],
        lambda f: f.assign(x=["1", "2", "3"]),
    ],
)
def test_a_value_a_name_an_order_or_a_type_changes_the_digest(change):
    frame = pd.DataFrame({"x": [1, 2, 3], "s": ["a", None, "c"], "f": [0.5, np.nan, 2.0]})
    assert td.frame_digest(change(frame)) != td.frame_digest(frame)


def test_the_digest_is_sha256_of_the_documented_bytes():
    frame = pd.DataFrame({"x": [1, 2]})
    header = b'{"columns":["x"],"kinds":["int"],"rows":2}'
    body = np.array([1, 2], dtype="<i8").tobytes()
    expected = hashlib.sha256(header + len(body).to_bytes(8, "little") + body).hexdigest()
    assert td.frame_digest(frame) == expected


def test_the_record_holds_each_inputs_digest():
    frame, rows = dataset(), production()
    data = assemble(dataset=frame, production=rows)
    assert data.record["inputs"] == {
        "dataset": {"rows": 400, "sha256": td.frame_digest(frame)},
        "production": {"rows": 100, "sha256": td.frame_digest(rows)},
    }
    assert data.record["train"]["sha256"] == td.frame_digest(data.train)
    assert data.record["train"]["class_counts"] == {
        str(k): int(v) for k, v in sorted(data.train["y"].value_counts().items())
    }


# --------------------------------------------------------------------------- environment


def test_the_environment_names_the_libraries_and_every_seed():
    env = td.environment(seeds={"split": 5, "fit": np.int64(7)})
    assert env == {
        "python": platform.python_version(),
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "seeds": {"split": 5, "fit": 7},
    }
