"""Security regressions for model artifacts and model card exports.

The catalogue of the "Hardening" issue, kept as tests so none can come back:
archive bombs, traversal and foreign member names, the explicit type
allow-list, crafted trees (and the other index-bearing state native code
trusts), and raw HTML in the model card's Markdown and JSON exports.

Every hostile file is built here. None of them is ever asked to predict: a
crafted tree that slipped through would crash the test process, not fail a
test. Whether skops alone would load the file is checked where it matters,
to show that our checks, not skops', refuse it.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import skops.io as sio
from sklearn import (
    calibration,
    compose,
    decomposition,
    discriminant_analysis,
    dummy,
    ensemble,
    feature_selection,
    impute,
    linear_model,
    naive_bayes,
    neighbors,
    neural_network,
    pipeline,
    preprocessing,
    svm,
    tree,
)
from sklearn.experimental import enable_iterative_imputer  # noqa: F401 (IterativeImputer)

from registry import artifacts
from registry.artifact_types import ALLOWED_TYPES, VALIDATED_TYPES
from registry.artifacts import (
    ArchiveLimits,
    ArtifactRejected,
    check_archive,
    is_allowed,
    load_estimator,
    read_bounded,
    type_name_problem,
)
from tests.conftest import (
    FEATURES,
    classifier_bytes,
    client_for,
    ready_version,
    register,
    training_frame,
    validate,
)
from tests.evidence_support import audit_frame

MiB = 1 << 20


# --- building archives ----------------------------------------------------------------


def write(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "model.skops"
    path.write_bytes(data)
    return str(path)


def refusal(tmp_path: Path, data: bytes) -> str:
    with pytest.raises(ArtifactRejected) as excinfo:
        load_estimator(write(tmp_path, data))
    return excinfo.value.reason


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Entry:
    """A zip member exactly as written: ``payload`` is already compressed."""

    name: bytes
    payload: bytes
    size: int  # the uncompressed size the headers declare
    crc: int
    method: int = zipfile.ZIP_STORED
    flags: int = 0

    @classmethod
    def stored(cls, name: str | bytes, data: bytes) -> Entry:
        raw = name.encode() if isinstance(name, str) else name
        return cls(raw, data, len(data), zlib.crc32(data))


_LOCAL = struct.Struct("<4s5H3L2H")  # signature, version, flags, method, time, date, ...
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")


def raw_zip(entries: list[Entry], *, claimed_entries: int | None = None) -> bytes:
    """A zip archive written by hand: any name, any declared size, any count."""
    body = io.BytesIO()
    directory = io.BytesIO()
    for e in entries:
        offset = body.tell()
        sizes = (e.crc, len(e.payload), e.size, len(e.name))
        body.write(_LOCAL.pack(b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21, *sizes, 0))
        body.write(e.name + e.payload)
        head = (b"PK\x01\x02", 20, 3, 20, 0, e.flags, e.method, 0, 0x21)
        directory.write(_CENTRAL.pack(*head, *sizes, 0, 0, 0, 0, 0, offset) + e.name)
    count = len(entries) if claimed_entries is None else claimed_entries
    end = _END.pack(b"PK\x05\x06", 0, 0, count, count, directory.tell(), body.tell(), 0)
    return body.getvalue() + directory.getvalue() + end


def skops_entries(data: bytes) -> list[Entry]:
    return [Entry.stored(name, content) for name, content in members_of(data).items()]


def deflated_zeros(mebibytes: int) -> Entry:
    """``mebibytes`` MiB of zeros in about a thousandth of the space.

    One MiB of zeros is deflated once and ended with a full flush, which
    byte-aligns it and makes it refer to nothing before it, so the piece can
    be repeated; a final empty block ends the stream.
    """
    block = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    payload = piece * mebibytes + final
    return Entry(b"", payload, mebibytes * MiB, crc, zipfile.ZIP_DEFLATED)


def states(node: Any, predicate: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    """The skops node states in a schema that match ``predicate``, in file order."""
    if isinstance(node, dict):
        if predicate(node):
            yield node
        for value in node.values():
            yield from states(value, predicate)
    elif isinstance(node, list):
        for value in node:
            yield from states(value, predicate)


_fresh_ids = iter(range(10**15, 10**16))


def set_json(state: dict[str, Any], value: Any) -> None:
    """Change a JSON leaf; a new ``__id__`` stops skops reusing a cached twin."""
    state["content"] = json.dumps(value)
    state["__id__"] = next(_fresh_ids)


def load_array(members: dict[str, bytes], state: dict[str, Any]) -> np.ndarray:
    return np.load(io.BytesIO(members[state["file"]]), allow_pickle=False)


def edit_array(members: dict[str, bytes], state: dict[str, Any], edit: Callable) -> None:
    array = load_array(members, state)
    edit(array)
    members[state["file"]] = npy(array)


def crafted(estimator: Any, edit: Callable[[dict[str, bytes], dict[str, Any]], None]) -> bytes:
    """``estimator`` dumped by skops, then ``edit``-ed (members and schema)."""
    members = members_of(sio.dumps(estimator))
    schema = json.loads(members["schema.json"])
    edit(members, schema)
    members["schema.json"] = json.dumps(schema).encode()
    return rezip(members)


def skops_alone_loads(data: bytes) -> bool:
    """skops' own check passes once its untrusted types are trusted (no predict)."""
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    return True


@dataclass
class Inflation:
    declared: int
    produced: int = 0


class Counting:
    def __init__(self, stream: Any, record: Inflation) -> None:
        self.stream, self.record = stream, record

    def read(self, n: int) -> bytes:
        chunk = self.stream.read(n)
        self.record.produced += len(chunk)
        return chunk


@pytest.fixture
def inflations(monkeypatch: pytest.MonkeyPatch) -> list[Inflation]:
    """Every member the loader starts to inflate: its declared and produced sizes."""
    calls: list[Inflation] = []
    original = artifacts.read_bounded

    def spy(stream: Any, budget: Any, declared: int, *, keep: int) -> bytes:
        calls.append(Inflation(declared))
        return original(Counting(stream, calls[-1]), budget, declared, keep=keep)

    monkeypatch.setattr(artifacts, "read_bounded", spy)
    return calls


# --- archive bombs ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gibibyte_bomb() -> bytes:
    """The issue's file: a classifier plus a 1 MB member that inflates to 1 GiB."""
    bomb = deflated_zeros(1024)
    bomb.name = b"140000000000.npy"
    data = raw_zip([*skops_entries(classifier_bytes()), bomb])
    assert len(data) < 2 * MiB
    return data


@pytest.mark.django_db
def test_a_member_inflating_a_thousandfold_fails_registration_before_anything_is_inflated(
    model, personas, gibibyte_bomb, inflations
):
    version = validate(register(model, personas.bot, artifact=gibibyte_bomb))
    assert version.status == "failed"
    assert "'140000000000.npy' would inflate 1" in version.status_reason
    assert "ARTIFACT_MAX_RATIO" in version.status_reason
    assert inflations == []


def test_declared_sizes_over_the_limit_are_refused_before_inflating(
    tmp_path, settings, gibibyte_bomb, inflations
):
    settings.ARTIFACT_MAX_RATIO = 10_000  # the size limit alone must stop it
    reason = refusal(tmp_path, gibibyte_bomb)
    assert "declares more than 1024 MB" in reason and "ARTIFACT_MAX_UNCOMPRESSED_MB" in reason
    assert inflations == []


def test_a_legitimate_model_over_the_size_limit_is_refused(tmp_path, settings):
    settings.ARTIFACT_MAX_UNCOMPRESSED_BYTES = 1000
    assert "declares more than 1000 bytes" in refusal(tmp_path, classifier_bytes())


def test_the_whole_archive_ratio_counts_too(tmp_path, settings, inflations):
    # Many members each under the per-member floor, together a bomb.
    pieces = []
    for i in range(40):
        piece = deflated_zeros(1)
        piece.name = f"{i}.npy".encode()
        pieces.append(piece)
    reason = refusal(tmp_path, raw_zip([*skops_entries(classifier_bytes()), *pieces]))
    assert "The archive would inflate" in reason and "ARTIFACT_MAX_RATIO" in reason
    assert inflations == []


class EndlessZeros:
    def __init__(self) -> None:
        self.produced = 0

    def read(self, n: int) -> bytes:
        self.produced += n
        return bytes(n)


def test_inflating_stops_at_the_limit_whatever_the_stream_would_go_on_to_produce():
    stream = EndlessZeros()
    with pytest.raises(ArtifactRejected, match="inflating stopped at the limit"):
        read_bounded(stream, artifacts._Budget(8 * MiB), declared=10**12, keep=0)
    assert stream.produced <= 9 * MiB


def test_inflating_stops_when_a_member_outgrows_the_size_its_header_declares():
    stream = EndlessZeros()
    with pytest.raises(ArtifactRejected, match="more than the size its header declares"):
        read_bounded(stream, artifacts._Budget(10**12), declared=100, keep=0)
    assert stream.produced <= MiB


def test_a_member_whose_header_understates_its_size_is_never_inflated_past_it(tmp_path, inflations):
    liar = deflated_zeros(64)
    liar.name, liar.size, liar.crc = b"140000000001.npy", 1000, zlib.crc32(bytes(1000))
    reason = refusal(tmp_path, raw_zip([*skops_entries(classifier_bytes()), liar]))
    assert "140000000001.npy" in reason and "not a valid .npy array" in reason
    assert inflations[-1] == Inflation(declared=1000, produced=1000)


@pytest.mark.parametrize("claimed", [None, 1], ids=["honest count", "count claiming one member"])
def test_too_many_members_are_refused_from_the_end_record_before_zipfile_parses_them(
    tmp_path, settings, monkeypatch, claimed
):
    settings.ARTIFACT_MAX_MEMBERS = 10
    entries = [Entry.stored(f"{i}.npy", b"x") for i in range(60)]
    data = raw_zip(entries, claimed_entries=claimed)

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("zipfile parsed the directory")

    monkeypatch.setattr(artifacts.zipfile, "ZipFile", never)
    assert "more than 10 members (ARTIFACT_MAX_MEMBERS)" in refusal(tmp_path, data)


def sparse_classifier() -> Any:
    frame = training_frame()
    return linear_model.LogisticRegression(max_iter=200).fit(frame[FEATURES], frame["label"])


def test_a_sparse_matrix_that_is_itself_a_zip_bomb_is_refused_before_inflating(
    tmp_path, inflations
):
    model = sparse_classifier().sparsify()
    members = members_of(sio.dumps(model))
    [npz] = [name for name in members if name.endswith(".npz")]
    bomb = deflated_zeros(256)
    bomb.name = b"data.npy"
    inner = members_of(members[npz])
    members[npz] = raw_zip(
        [bomb, *(Entry.stored(n, d) for n, d in inner.items() if n != "data.npy")]
    )
    reason = refusal(tmp_path, rezip(members))
    assert f"sparse matrix '{npz}' member 'data.npy' would inflate" in reason
    assert sum(i.produced for i in inflations) < MiB  # the outer members only


def test_the_schema_cannot_make_skops_read_one_member_many_times(tmp_path, settings):
    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        attrs = schema["content"]["content"]
        coef = attrs["coef_"]
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(12_800))  # 100 KB
        members[coef["file"]] = buffer.getvalue()
        for i in range(200):  # each its own object: skops would read the member again
            attrs[f"coef_copy_{i}"] = {**coef, "__id__": next(_fresh_ids)}
        key_types = schema["content"]["key_types"]["content"]
        key_types += [key_types[0]] * 200

    data = crafted(sparse_classifier(), edit)
    assert len(data) < 200_000
    settings.ARTIFACT_MAX_UNCOMPRESSED_BYTES = 10 * MiB  # 200 reads of 100 KB exceed it
    assert "reads its members to more than 10 MB" in refusal(tmp_path, data)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (Entry.stored("140000000002.npy", npy(np.zeros(3))), "the skops schema does not use"),
        (Entry.stored("notes.txt", b"hello"), "its name is not a member skops writes"),
        (Entry.stored("schema.json", b"{}"), "holds the member 'schema.json' twice"),
        (Entry(b"140000000003.npy", b"x", 1, zlib.crc32(b"x"), flags=0x1), "is encrypted"),
        (
            Entry(b"140000000004.npy", b"x", 1, zlib.crc32(b"x"), method=99),
            "unsupported compression",
        ),
    ],
    ids=["unused member", "foreign name", "duplicate name", "encrypted", "unknown compression"],
)
def test_members_skops_does_not_write_or_use_are_refused(tmp_path, extra, problem):
    data = raw_zip([*skops_entries(classifier_bytes()), extra])
    assert problem in refusal(tmp_path, data)


# --- traversal names -------------------------------------------------------------------------


TRAVERSAL = [
    (b"../../../tmp/owned.npy", "holds '..'"),
    (b"models/../../owned.npy", "holds '..'"),
    (b"/etc/cron.d/owned", "is an absolute path"),
    (b"..\\..\\owned.npy", "holds a backslash"),
    (b"C:/Windows/owned.npy", "names a drive"),
    (b"C:owned.npy", "names a drive"),
    (b"140000000005.npy\x00.txt", "holds a NUL byte"),
    (b"nested/140000000006.npy", "is not a member skops writes"),
]


@pytest.mark.parametrize(("name", "problem"), TRAVERSAL, ids=[t[1] for t in TRAVERSAL])
def test_members_with_traversal_names_are_refused(tmp_path, name, problem, inflations):
    data = raw_zip([*skops_entries(classifier_bytes()), Entry.stored(name, b"payload")])
    assert f"its name {problem}" in refusal(tmp_path, data)
    assert inflations == []


@pytest.mark.django_db
def test_an_archive_with_a_traversal_member_is_never_ready(model, personas):
    data = raw_zip([*skops_entries(classifier_bytes()), Entry.stored(b"../../x.npy", b"1")])
    version = validate(register(model, personas.bot, artifact=data))
    assert version.status == "failed"
    assert "'../../x.npy' is refused: its name holds '..'" in version.status_reason


# --- the allow-list --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "numpy.load",
        "numpy.memmap",
        "numpy.lib._datasource.DataSource",
        "numpy.testing.assert_array_equal",
        "sklearn.datasets._openml.fetch_openml",
        "sklearn.utils._testing.TempMemmap",
        "sklearn.cluster._kmeans.KMeans",
        "sklearn.neighbors._kd_tree.KDTree",
        "scipy.sparse._coo.coo_matrix",
        "scipy.sparse._matrix_io.load_npz",
        "builtins.eval",
        "builtins.type",
        "sklearnx.Thing",
    ],
)
def test_names_the_old_module_prefixes_let_through_are_refused(name):
    assert not is_allowed(name)


def test_every_allowed_name_is_a_real_importable_object():
    for name in sorted(ALLOWED_TYPES):
        module, _, attribute = name.rpartition(".")
        assert hasattr(importlib.import_module(module), attribute), name


def test_the_types_skops_distrusts_for_memory_safety_are_allowed_only_with_validation():
    from skops.io.exceptions import UNTRUSTED_TYPE_REASONS

    assert set(UNTRUSTED_TYPE_REASONS) <= VALIDATED_TYPES


def test_a_type_off_the_list_is_refused_before_skops_constructs_anything(tmp_path, monkeypatch):
    from numpy.lib._datasource import DataSource

    smuggler = preprocessing.FunctionTransformer(kw_args={"source": DataSource(str(tmp_path))})
    data = sio.dumps(smuggler)
    monkeypatch.setattr(sio, "get_untrusted_types", lambda **kw: pytest.fail("skops was asked"))
    monkeypatch.setattr(sio, "load", lambda *a, **kw: pytest.fail("skops loaded it"))
    reason = refusal(tmp_path, data)
    assert "allow-list: numpy.lib.npyio.DataSource" in reason
    assert "ARTIFACT_EXTRA_TYPES" in reason


def test_k_nearest_neighbours_with_a_kd_tree_is_refused_with_the_way_out(tmp_path):
    frame = training_frame()
    knn = neighbors.KNeighborsClassifier().fit(frame[FEATURES], frame["label"])
    reason = refusal(tmp_path, sio.dumps(knn))
    assert "sklearn.neighbors._kd_tree.KDTree" in reason and "algorithm='brute'" in reason


def test_an_operator_adds_an_exact_name_with_a_setting(tmp_path, settings):
    frame = training_frame()
    forest = ensemble.IsolationForest(n_estimators=3, random_state=0).fit(frame[FEATURES])
    path = write(tmp_path, sio.dumps(forest))
    with pytest.raises(ArtifactRejected, match="IsolationForest"):
        load_estimator(path)
    settings.ARTIFACT_EXTRA_TYPES = ["sklearn.ensemble._iforest.IsolationForest"]
    loaded, _types = load_estimator(path)  # its trees are validated like any other
    assert isinstance(loaded, ensemble.IsolationForest)


@pytest.mark.parametrize(
    "name", ["sklearn.", "sklearn.*", "numpy", "sklearn.tree.", " sklearn.Thing", "a..b"]
)
def test_an_operator_cannot_add_a_prefix_or_a_malformed_name(name):
    assert type_name_problem(name)
    with pytest.raises(ValueError):
        artifacts.register_trusted_types(name)


# --- crafted trees and other index-bearing state ---------------------------------------------


@functools.cache
def fitted_tree() -> tree.DecisionTreeClassifier:
    frame = training_frame()
    return tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(
        frame[FEATURES], frame["label"]
    )


def is_tree(state: dict[str, Any]) -> bool:
    return state.get("__loader__") == "TreeNode"


def tree_parts(schema: dict[str, Any], index: int = 0) -> tuple[list, dict[str, Any]]:
    node = list(states(schema, is_tree))[index]
    return node["__reduce__"]["args"]["content"], node["content"]["content"]


def nodes_edit(
    field: str, value: Callable[[np.ndarray], Any], at: Callable[[np.ndarray], int] = lambda n: 0
) -> Callable:
    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        _args, state = tree_parts(schema)

        def change(nodes: np.ndarray) -> None:
            nodes[field][at(nodes)] = value(nodes)

        edit_array(members, state["nodes"], change)

    return edit


def internal_child(nodes: np.ndarray) -> int:
    """The first internal node below the root."""
    return int(next(i for i in range(1, len(nodes)) if nodes["left_child"][i] != -1))


def state_edit(key: str, value: int) -> Callable:
    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        _args, state = tree_parts(schema)
        set_json(state[key], value)

    return edit


def n_features_edit(value: int) -> Callable:
    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        args, _state = tree_parts(schema)
        set_json(args[0], value)

    return edit


CRAFTED_TREES = {
    "root's left child far outside the nodes": (
        nodes_edit("left_child", lambda n: 10**6),
        "node 0 has a child index outside its",
    ),
    "root's right child negative": (
        nodes_edit("right_child", lambda n: -7),
        "node 0 has a child index outside its",
    ),
    "split on a feature the tree does not have": (
        nodes_edit("feature", lambda n: 99),
        "a split uses feature 99 of its 3 features",
    ),
    "negative feature": (nodes_edit("feature", lambda n: -3), "a split uses feature -3"),
    "child pointing back at the root (a loop)": (
        nodes_edit("left_child", lambda n: 0, at=internal_child),
        "or before itself",
    ),
    "both children the same node": (
        nodes_edit("right_child", lambda n: n["left_child"][0]),
        "do not form a single tree",
    ),
    # (A count above the array's length scikit-learn itself clamps.)
    "node count short of the node array": (
        state_edit("node_count", 2),
        "it claims 2 nodes but holds",
    ),
    "depth understated (decision_path's buffers)": (
        state_edit("max_depth", 1),
        "it claims depth 1 but is 3 deep",
    ),
    "tree reading more features than the estimator takes": (
        n_features_edit(50),
        "its tree reads 50 features but the estimator takes 3",
    ),
}


@pytest.mark.parametrize(("edit", "problem"), list(CRAFTED_TREES.values()), ids=list(CRAFTED_TREES))
def test_a_crafted_decision_tree_is_refused_before_any_prediction(tmp_path, edit, problem):
    data = crafted(fitted_tree(), edit)
    assert skops_alone_loads(data)
    reason = refusal(tmp_path, data)
    assert "refused before any prediction" in reason
    assert problem in reason


def test_a_crafted_tree_deep_inside_a_forest_in_a_pipeline_is_found(tmp_path):
    frame = training_frame()
    model = pipeline.make_pipeline(
        preprocessing.StandardScaler(),
        ensemble.RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0),
    ).fit(frame[FEATURES], frame["label"])

    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        _args, state = tree_parts(schema, index=2)
        edit_array(members, state["nodes"], lambda n: n["left_child"].__setitem__(0, 10**6))

    reason = refusal(tmp_path, crafted(model, edit))
    assert "node 0 has a child index outside its" in reason


def test_gradient_boosting_with_more_trees_per_stage_than_outputs_is_refused(tmp_path):
    frame = training_frame()
    model = ensemble.GradientBoostingClassifier(n_estimators=3, random_state=0)
    model.fit(frame[FEATURES], frame["label"])

    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        set_json(schema["content"]["content"]["n_trees_per_iteration_"], 0)

    reason = refusal(tmp_path, crafted(model, edit))
    assert "it has 1 trees per stage but 0 outputs" in reason


def gradient_boosting_with_init(init: Any) -> Any:
    frame = training_frame()
    model = ensemble.GradientBoostingClassifier(n_estimators=2, init=init, random_state=0)
    return model.fit(frame[FEATURES], frame["label"])


def test_gradient_boosting_accepts_only_initial_estimators_of_known_width(tmp_path):
    zero = gradient_boosting_with_init("zero")
    assert load_estimator(write(tmp_path, sio.dumps(zero)))[0].init_ == "zero"
    custom = gradient_boosting_with_init(linear_model.LogisticRegression())
    assert "not LogisticRegression" in refusal(tmp_path, sio.dumps(custom))


@functools.cache
def hist_gradient_boosting(categorical: bool = False) -> Any:
    frame = training_frame()
    X = frame[FEATURES].copy()
    if categorical:  # the band decides the label: the trees split on it first
        X = X.assign(score=(frame["score"] * 5).astype(int))
    model = ensemble.HistGradientBoostingClassifier(
        max_iter=3, categorical_features=[2] if categorical else None, random_state=0
    )
    return model.fit(X, frame["label"])


def predictor_edit(field: str, value: int, *, categorical: bool = False) -> Callable:
    """Set ``field`` of the first internal (categorical) node of any predictor."""

    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        for predictor in states(schema, lambda s: s.get("__class__") == "TreePredictor"):
            state = predictor["content"]["content"]["nodes"]
            nodes = load_array(members, state)
            wanted = (nodes["is_leaf"] == 0) & ((nodes["is_categorical"] != 0) | (not categorical))
            if wanted.any():
                at = np.flatnonzero(wanted)[0]
                edit_array(members, state, lambda n, at=at: n[field].__setitem__(at, value))
                return
        raise AssertionError("no such split")

    return edit


@pytest.mark.parametrize(
    ("categorical", "edit", "problem"),
    [
        (False, predictor_edit("left", 10**6), "has a child index outside its"),
        (False, predictor_edit("feature_idx", 7), "a split uses feature 7 of the model's 3"),
        (True, predictor_edit("bitset_idx", 40, categorical=True), "outside its bitsets"),
        # The preprocessor puts categorical columns first: column 2 is numeric.
        (True, predictor_edit("feature_idx", 2, categorical=True), "does not treat as categ"),
    ],
    ids=["child outside", "feature outside", "bitset outside", "numeric feature as category"],
)
def test_a_crafted_histogram_gradient_boosting_tree_is_refused(
    tmp_path, categorical, edit, problem
):
    data = crafted(hist_gradient_boosting(categorical), edit)
    assert skops_alone_loads(data)
    assert problem in refusal(tmp_path, data)


def test_a_sparse_matrix_with_indices_outside_its_shape_is_refused(tmp_path):
    def edit(members: dict[str, bytes], schema: dict[str, Any]) -> None:
        [name] = [n for n in members if n.endswith(".npz")]
        matrix = sp.load_npz(io.BytesIO(members[name]))
        matrix.indices[0] = 10**6
        buffer = io.BytesIO()
        sp.save_npz(buffer, matrix)
        members[name] = buffer.getvalue()

    reason = refusal(tmp_path, crafted(sparse_classifier().sparsify(), edit))
    assert "a sparse matrix" in reason


# --- every estimator we accept round-trips through the loader ----------------------------------


def _frames() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    frame = training_frame(240)
    X = frame[FEATURES].assign(income=frame["income"] / 10_000)  # solvers converge quickly
    credit = X.assign(employment=rng.choice(["salaried", "self-employed", "none"], len(X)))
    return {
        "X": X,
        "label": frame["label"],
        "classes": pd.cut(frame["score"], [-1, 0.33, 0.66, 2], labels=False).astype(int),
        "score": frame["score"],
        "positive": frame["income"] / 1000,
        "counts": (X.rank(pct=True) * 5).round().astype(int),
        "credit": credit,
        "credit categories": credit.astype({"employment": "category"}),
        "categorical": X.assign(age=(frame["score"] * 4).astype(int)),
    }


DATA = _frames()


def credit_pipeline(estimator: Any) -> Any:
    """The demo's credit pipeline (scaled numbers, one-hot employment)."""
    return pipeline.Pipeline(
        [
            (
                "prep",
                compose.ColumnTransformer(
                    [
                        ("num", preprocessing.StandardScaler(), FEATURES),
                        (
                            "cat",
                            preprocessing.OneHotEncoder(handle_unknown="ignore"),
                            ["employment"],
                        ),
                    ]
                ),
            ),
            ("model", estimator),
        ]
    )


@dataclass
class Case:
    estimator: Any
    X: str = "X"
    y: str = "label"
    then: Callable[[Any], Any] | None = None  # applied after fit


def on(estimator: Any, X: str = "X", y: str = "label", then: Callable | None = None) -> Case:
    return Case(estimator, X, y, then)


def lr() -> Any:
    return linear_model.LogisticRegression(max_iter=300)


ZOO: dict[str, Case] = {
    # what the demo registers (its estimators on fewer rows, its boosting with fewer
    # iterations: the same types)
    "demo: credit logistic regression": on(
        credit_pipeline(linear_model.LogisticRegression(max_iter=500)), "credit"
    ),
    "demo: credit random forest": on(
        credit_pipeline(
            ensemble.RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0)
        ),
        "credit",
    ),
    "demo: credit histogram gradient boosting": on(
        credit_pipeline(ensemble.HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        "credit",
    ),
    "demo: diabetes ridge": on(linear_model.Ridge(alpha=1.0), y="score"),
    "demo: diabetes gradient boosting": on(
        ensemble.GradientBoostingRegressor(random_state=0), y="score"
    ),
    # what the tests register
    "tests: logistic regression": on(linear_model.LogisticRegression(max_iter=200)),
    "tests: ridge": on(linear_model.Ridge(), y="score"),
    "tests: random forest": on(
        ensemble.RandomForestClassifier(n_estimators=20, max_depth=3, random_state=0)
    ),
    "tests: decision tree": on(tree.DecisionTreeClassifier(max_depth=4, random_state=0)),
    # linear models
    "linear regression": on(linear_model.LinearRegression(), y="score"),
    "ridge cv": on(linear_model.RidgeCV(), y="score"),
    "ridge classifier": on(linear_model.RidgeClassifier()),
    "lasso": on(linear_model.Lasso(alpha=0.01), y="score"),
    "elastic net cv": on(linear_model.ElasticNetCV(cv=3), y="score"),
    "logistic regression multiclass": on(lr(), y="classes"),
    "logistic regression cv": on(linear_model.LogisticRegressionCV(Cs=3, cv=3, max_iter=300)),
    "logistic regression sparsified": on(lr(), then=lambda m: m.sparsify()),
    "logistic regression with a sparse-array coef": on(
        lr(), then=lambda m: setattr(m, "coef_", sp.csr_array(m.coef_))
    ),
    "sgd hinge": on(linear_model.SGDClassifier(random_state=0)),
    "sgd log loss": on(linear_model.SGDClassifier(loss="log_loss", random_state=0)),
    "sgd modified huber early stopping": on(
        linear_model.SGDClassifier(loss="modified_huber", early_stopping=True, random_state=0)
    ),
    "sgd squared hinge averaged": on(
        linear_model.SGDClassifier(loss="squared_hinge", average=True, random_state=0), y="classes"
    ),
    "sgd regressor huber": on(linear_model.SGDRegressor(loss="huber", random_state=0), y="score"),
    "sgd regressor epsilon insensitive": on(
        linear_model.SGDRegressor(loss="epsilon_insensitive", random_state=0), y="score"
    ),
    "perceptron": on(linear_model.Perceptron(random_state=0)),
    "huber": on(linear_model.HuberRegressor(), y="score"),
    "poisson": on(linear_model.PoissonRegressor(), y="positive"),
    "gamma": on(linear_model.GammaRegressor(), y="positive"),
    "tweedie": on(linear_model.TweedieRegressor(power=1.5), y="positive"),
    "bayesian ridge": on(linear_model.BayesianRidge(), y="score"),
    "quantile regressor": on(linear_model.QuantileRegressor(alpha=0.0), y="score"),
    # naive Bayes
    "gaussian nb": on(naive_bayes.GaussianNB()),
    "multinomial nb": on(naive_bayes.MultinomialNB(), "counts"),
    "bernoulli nb": on(naive_bayes.BernoulliNB()),
    "complement nb": on(naive_bayes.ComplementNB(), "counts"),
    "categorical nb": on(naive_bayes.CategoricalNB(), "counts"),
    # trees and ensembles
    "extra tree": on(tree.ExtraTreeRegressor(random_state=0), y="score"),
    "random forest regressor": on(
        ensemble.RandomForestRegressor(n_estimators=5, random_state=0), y="score"
    ),
    "extra trees": on(ensemble.ExtraTreesClassifier(n_estimators=5, random_state=0)),
    "gradient boosting binary": on(
        ensemble.GradientBoostingClassifier(n_estimators=5, random_state=0)
    ),
    "gradient boosting multiclass subsampled": on(
        ensemble.GradientBoostingClassifier(n_estimators=5, subsample=0.8, random_state=0),
        y="classes",
    ),
    "gradient boosting exponential loss": on(
        ensemble.GradientBoostingClassifier(n_estimators=5, loss="exponential", random_state=0)
    ),
    "gradient boosting early stopping": on(
        ensemble.GradientBoostingClassifier(n_estimators=50, n_iter_no_change=2, random_state=0)
    ),
    "gradient boosting quantile": on(
        ensemble.GradientBoostingRegressor(n_estimators=5, loss="quantile", random_state=0),
        y="score",
    ),
    "gradient boosting huber": on(
        ensemble.GradientBoostingRegressor(n_estimators=5, loss="huber", random_state=0), y="score"
    ),
    "hist gradient boosting multiclass": on(
        ensemble.HistGradientBoostingClassifier(max_iter=5, random_state=0), y="classes"
    ),
    "hist gradient boosting categorical": on(
        ensemble.HistGradientBoostingClassifier(
            max_iter=5, categorical_features=[0], random_state=0
        ),
        "categorical",
    ),
    "hist gradient boosting categorical from dtype": on(
        ensemble.HistGradientBoostingClassifier(
            max_iter=5, categorical_features="from_dtype", random_state=0
        ),
        "credit categories",
    ),
    "hist gradient boosting early stopping": on(
        ensemble.HistGradientBoostingClassifier(max_iter=20, early_stopping=True, random_state=0)
    ),
    "hist gradient boosting poisson": on(
        ensemble.HistGradientBoostingRegressor(max_iter=5, loss="poisson"), y="positive"
    ),
    "hist gradient boosting quantile": on(
        ensemble.HistGradientBoostingRegressor(max_iter=5, loss="quantile", quantile=0.8), y="score"
    ),
    "adaboost": on(ensemble.AdaBoostClassifier(n_estimators=5, random_state=0)),
    "bagging": on(ensemble.BaggingRegressor(n_estimators=3, random_state=0), y="score"),
    "voting": on(
        ensemble.VotingClassifier([("lr", lr()), ("nb", naive_bayes.GaussianNB())], voting="soft")
    ),
    "stacking": on(
        ensemble.StackingRegressor(
            [("ridge", linear_model.Ridge()), ("tree", tree.DecisionTreeRegressor(max_depth=3))],
            cv=3,
        ),
        y="score",
    ),
    # neural networks, SVMs, neighbours, others
    "mlp adam": on(
        neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0)
    ),
    "mlp sgd": on(
        neural_network.MLPClassifier(
            hidden_layer_sizes=(8,), solver="sgd", max_iter=30, random_state=0
        )
    ),
    "mlp lbfgs regressor": on(
        neural_network.MLPRegressor(
            hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0
        ),
        y="score",
    ),
    "svc with probabilities": on(svm.SVC(probability=True, random_state=0)),
    "linear svc": on(svm.LinearSVC()),
    "nu svr": on(svm.NuSVR(), y="score"),
    "knn brute": on(neighbors.KNeighborsClassifier(algorithm="brute")),
    "knn regressor brute": on(neighbors.KNeighborsRegressor(algorithm="brute"), y="score"),
    "nearest centroid": on(neighbors.NearestCentroid()),
    "lda": on(discriminant_analysis.LinearDiscriminantAnalysis()),
    "qda": on(discriminant_analysis.QuadraticDiscriminantAnalysis()),
    "dummy": on(dummy.DummyClassifier()),
    "calibrated (sigmoid and isotonic)": on(
        calibration.CalibratedClassifierCV(svm.LinearSVC(), cv=3, method="isotonic")
    ),
    # pipelines and transformers
    "scalers and encoders": on(
        pipeline.make_pipeline(
            compose.ColumnTransformer(
                [
                    ("num", preprocessing.RobustScaler(), FEATURES),
                    ("cat", preprocessing.OrdinalEncoder(), ["employment"]),
                    ("target", preprocessing.TargetEncoder(random_state=0), ["employment"]),
                ]
            ),
            preprocessing.MinMaxScaler(),
            lr(),
        ),
        "credit",
    ),
    "column selector": on(
        pipeline.make_pipeline(
            compose.ColumnTransformer(
                [
                    (
                        "num",
                        preprocessing.StandardScaler(),
                        compose.make_column_selector(dtype_include="number"),
                    ),
                    (
                        "cat",
                        preprocessing.OneHotEncoder(sparse_output=False),
                        compose.make_column_selector(dtype_include=object),
                    ),
                ]
            ),
            lr(),
        ),
        "credit",
    ),
    "imputers and indicator": on(
        pipeline.make_pipeline(
            pipeline.make_union(impute.SimpleImputer(add_indicator=True), impute.KNNImputer()), lr()
        ),
        "X",
    ),
    "iterative imputer": on(
        pipeline.make_pipeline(impute.IterativeImputer(max_iter=3, random_state=0), lr())
    ),
    "power, quantile, polynomial, binning": on(
        pipeline.make_pipeline(
            preprocessing.PowerTransformer(),
            preprocessing.QuantileTransformer(n_quantiles=50),
            preprocessing.PolynomialFeatures(2),
            preprocessing.KBinsDiscretizer(n_bins=3, quantile_method="averaged_inverted_cdf"),
            lr(),
        )
    ),
    "normalizer, max-abs, binarizer, function": on(
        pipeline.make_pipeline(
            preprocessing.FunctionTransformer(np.log1p),
            preprocessing.MaxAbsScaler(),
            preprocessing.Normalizer(),
            preprocessing.Binarizer(threshold=0.1),
            lr(),
        ),
        "counts",
    ),
    "feature selection and pca": on(
        pipeline.make_pipeline(
            feature_selection.VarianceThreshold(),
            feature_selection.SelectKBest(feature_selection.f_classif, k=2),
            decomposition.PCA(1),
            lr(),
        )
    ),
    "select from model and rfe": on(
        pipeline.make_pipeline(
            feature_selection.RFE(lr(), n_features_to_select=2),
            feature_selection.SelectFromModel(lr(), max_features=1),
            lr(),
        )
    ),
    "transformed target": on(
        compose.TransformedTargetRegressor(
            linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1
        ),
        y="positive",
    ),
}


def fit(name: str) -> tuple[Any, pd.DataFrame]:
    case = ZOO[name]
    X = DATA[case.X]
    estimator = case.estimator.fit(X, DATA[case.y])
    if case.then is not None:
        estimator = case.then(estimator) or estimator
    return estimator, X


def through_loader(tmp_path: Path, estimator: Any) -> Any:
    loaded, _types = load_estimator(write(tmp_path, sio.dumps(estimator)))
    return loaded


def same_predictions(expected: Any, got: Any) -> None:
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", list(ZOO))
def test_every_accepted_estimator_round_trips_through_the_safe_loader(tmp_path, name):
    estimator, X = fit(name)
    loaded = through_loader(tmp_path, estimator)
    same_predictions(estimator.predict(X), loaded.predict(X))


WARM: dict[str, Callable[[], Any]] = {
    "sgd classifier": lambda: linear_model.SGDClassifier(random_state=0),
    "sgd regressor": lambda: linear_model.SGDRegressor(random_state=0),
    "mlp classifier": lambda: neural_network.MLPClassifier(hidden_layer_sizes=(8,), random_state=0),
    "mlp regressor (sgd)": lambda: neural_network.MLPRegressor(
        hidden_layer_sizes=(8,), solver="sgd", random_state=0
    ),
    "gaussian nb": lambda: naive_bayes.GaussianNB(),
    "multinomial nb": lambda: naive_bayes.MultinomialNB(),
    "random forest (warm start)": lambda: ensemble.RandomForestClassifier(
        n_estimators=3, warm_start=True, random_state=0
    ),
    "gradient boosting (warm start)": lambda: ensemble.GradientBoostingClassifier(
        n_estimators=3, warm_start=True, random_state=0
    ),
    "hist gradient boosting (warm start)": lambda: ensemble.HistGradientBoostingClassifier(
        max_iter=3, warm_start=True, random_state=0
    ),
    "mlp (warm start)": lambda: neural_network.MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=20, warm_start=True, random_state=0
    ),
}


def train_more(estimator: Any, X: Any, y: Any, first: bool) -> None:
    regressor = y.dtype.kind == "f"
    if getattr(estimator, "warm_start", False):
        if not first:
            for param in ("n_estimators", "max_iter"):
                if param in estimator.get_params():
                    estimator.set_params(**{param: estimator.get_params()[param] + 3})
        estimator.fit(X, y)
    elif first and not regressor:
        estimator.partial_fit(X, y, classes=np.unique(y))
    else:
        estimator.partial_fit(X, y)


@pytest.mark.parametrize("name", list(WARM))
def test_a_loaded_model_keeps_training_and_round_trips_again(tmp_path, name):
    """What retraining does: load, partial_fit or warm-start, store, load."""
    estimator = WARM[name]()
    regressor = "regressor" in name
    X = DATA["counts"] if "multinomial" in name else DATA["X"]
    y = DATA["score"] if regressor else DATA["classes"]
    train_more(estimator, X, y, first=True)
    loaded = through_loader(tmp_path, estimator)
    train_more(loaded, X, y, first=False)
    train_more(estimator, X, y, first=False)
    same_predictions(estimator.predict(X), loaded.predict(X))
    again = through_loader(tmp_path, loaded)
    same_predictions(loaded.predict(X), again.predict(X))


@pytest.mark.parametrize("method", ["threshold_optimizer", "exponentiated_gradient"])
def test_fairness_mitigated_candidates_round_trip_through_the_safe_loader(tmp_path, method):
    from governance.estimators import mitigated_estimator

    frame = audit_frame(300)
    base = linear_model.LogisticRegression(max_iter=300).fit(frame[FEATURES], frame["label"])
    candidate = mitigated_estimator(
        base,
        frame,
        features=FEATURES,
        target="label",
        sensitive=["sex"],
        method=method,
        constraint="demographic_parity",
        random_state=1,
    )
    loaded = through_loader(tmp_path, candidate)
    same_predictions(candidate.predict_proba(frame), loaded.predict_proba(frame))


def test_a_genuine_skops_file_passes_the_archive_checks_and_gives_its_schema(tmp_path):
    schema = check_archive(write(tmp_path, classifier_bytes()), ArchiveLimits())
    assert schema["__class__"] == "LogisticRegression"


# --- model card exports ----------------------------------------------------------------------

CARD = "/api/v1/models/credit/versions/1/model-card"
HOSTILE = {
    "intended_use": "<script>alert(1)</script> & <b>ranking</b>",
    "out_of_scope_use": '<img src=x onerror="alert(2)">',
    "limitations": "<iframe src=//evil></iframe>",
    "ethical_considerations": "a < b > c",
}
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;ranking&lt;/b&gt;"


@pytest.fixture
def hostile_card(model, personas) -> None:
    ready_version(model, personas.bot)
    assert client_for(personas.owner).patch(CARD, HOSTILE, format="json").status_code == 200


def assert_no_raw_html(text: str) -> None:
    for tag in ("<script", "<img", "<iframe", "<b>"):
        assert tag not in text


@pytest.mark.django_db
def test_the_markdown_export_escapes_html_from_the_narrative(hostile_card, personas, client):
    api_md = client_for(personas.viewer).get(CARD, {"format": "md"}).content.decode()
    client.force_login(personas.viewer)
    ui_md = client.get("/models/credit/versions/1/model-card/?format=md").content.decode()
    for text in (api_md, ui_md):
        assert_no_raw_html(text)
        assert f"## Intended use\n\n{ESCAPED}" in text
        assert '&lt;img src=x onerror="alert(2)"&gt;' in text


@pytest.mark.django_db
def test_the_json_export_escapes_html_from_the_narrative(hostile_card, personas, client):
    api_json = client_for(personas.viewer).get(CARD).json()
    client.force_login(personas.viewer)
    ui_json = client.get("/models/credit/versions/1/model-card/?format=json").json()
    for card in (api_json, ui_json):
        assert_no_raw_html(json.dumps(card))
        assert card["narrative"]["intended_use"] == ESCAPED
        assert card["narrative"]["ethical_considerations"] == "a &lt; b &gt; c"


@pytest.mark.django_db
def test_the_printable_html_export_still_escapes_once(hostile_card, personas):
    html = client_for(personas.viewer).get(CARD, {"format": "html"}).content.decode()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp;lt;" not in html
