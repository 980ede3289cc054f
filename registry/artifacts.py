"""Safe inspection and loading of model artifacts (pure: no Django).

Only skops files are accepted, and only when every type they name is on our
allow-list. Pickle and joblib are recognised by their *content* (whatever the
file is called) and refused before anything is deserialised. Two independent
checks guard loading: our own walk over every type named in the file's schema,
and skops' list of types it does not trust by default; both must pass the
allow-list, and only then is ``skops.io.load`` called with exactly the types
skops asked about.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALLOWED_MODULE_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
ALLOWED_EXACT = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.set",
        "builtins.frozenset",
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.bool",
        "builtins.NoneType",
        "builtins.slice",
        "builtins.type",
        "collections.OrderedDict",
        "collections.defaultdict",
        "numpy.ndarray",
        "numpy.dtype",
    }
)
# Names under an allowed prefix that still must never be loaded.
DENIED_NAMES = frozenset({"numpy.load", "numpy.save", "numpy.fromfile", "numpy.memmap"})

# Magic numbers of formats we refuse with a specific reason.
_PICKLE_MARKERS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_COMPRESSED_JOBLIB_MARKERS = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ": "xz",
    b"\x04\x22\x4d\x18": "lz4",
    b"ZF": "joblib zlib",
    b"x\x01": "zlib",
    b"x\x5e": "zlib",
    b"x\x9c": "zlib",
    b"x\xda": "zlib",
}
_ZIP_MAGIC = b"PK\x03\x04"

SIGNATURE_DTYPES = frozenset(
    {"float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool", "string", "category"}
)


class ArtifactRejected(Exception):
    """The artifact is not acceptable; ``reason`` says why, for the registrant."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ArtifactReport:
    estimator_class: str
    signature: dict[str, Any]
    hyperparameters: dict[str, Any]
    types: list[str] = field(default_factory=list)


def sniff(head: bytes) -> None:
    """Refuse anything that is not a zip archive, naming pickle/joblib explicitly."""
    if head.startswith(_ZIP_MAGIC):
        return
    old_protocol = head[:1] in (b"(", b"]", b"}") or (head[:1] == b"c" and b"\n" in head)
    if head.startswith(_PICKLE_MARKERS) or old_protocol:
        raise ArtifactRejected(
            "The artifact is a pickle (or joblib) file. Pickle can run arbitrary code when "
            "loaded and is never accepted: save the model with skops.io.dump instead."
        )
    for marker, kind in _COMPRESSED_JOBLIB_MARKERS.items():
        if head.startswith(marker):
            raise ArtifactRejected(
                f"The artifact looks like a {kind}-compressed joblib/pickle file, which is "
                "never accepted: save the model with skops.io.dump instead."
            )
    raise ArtifactRejected("The artifact is not a skops file (it is not a zip archive).")


def _qualified(node: dict[str, Any]) -> str:
    return f"{node.get('__module__')}.{node.get('__class__')}"


def _walk_types(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "__class__" in node and "__module__" in node:
            found.add(_qualified(node))
        for value in node.values():
            _walk_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk_types(value, found)


# Exact type names other apps vouch for (their own estimator wrappers), added
# from an AppConfig.ready with ``register_trusted_types``; never a prefix.
_trusted_extra: set[str] = set()


def register_trusted_types(*type_names: str) -> None:
    """Allow these exact ``module.Class`` names in artifacts (e.g. governance's
    fairness-mitigated classifiers). Each must be a plain data-holding class."""
    _trusted_extra.update(type_names)


def is_allowed(type_name: str) -> bool:
    if type_name in DENIED_NAMES:
        return False
    return (
        type_name in ALLOWED_EXACT
        or type_name in _trusted_extra
        or type_name.startswith(ALLOWED_MODULE_PREFIXES)
    )


def read_schema(path: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise ArtifactRejected(f"The artifact is corrupt (member {bad!r} fails its CRC).")
            if "schema.json" not in archive.namelist():
                raise ArtifactRejected("The archive has no skops schema.json: not a skops file.")
            return json.loads(archive.read("schema.json"))
    except zipfile.BadZipFile as exc:
        raise ArtifactRejected(f"The artifact is truncated or corrupt: {exc}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactRejected("The skops schema.json is not valid JSON.") from None


def check_types(path: str) -> tuple[list[str], list[str]]:
    """Return (every type named, the types skops must be told to trust)."""
    import skops.io as sio

    named: set[str] = set()
    _walk_types(read_schema(path), named)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors on malformed files
        raise ArtifactRejected(f"The skops file cannot be read: {exc}.") from None
    refused = sorted(t for t in named | set(untrusted) if not is_allowed(t))
    if refused:
        raise ArtifactRejected(
            "The artifact names types that are not on the allow-list "
            "(scikit-learn, numpy, scipy.sparse and plain containers): " + ", ".join(refused)
        )
    return sorted(named), list(untrusted)


def load_estimator(path: str) -> tuple[Any, list[str]]:
    """Load the estimator in a skops file after every safety check has passed."""
    import skops.io as sio

    with open(path, "rb") as handle:
        sniff(handle.read(64))
    types, untrusted = check_types(path)
    try:
        return sio.load(path, trusted=untrusted), types
    except Exception as exc:
        raise ArtifactRejected(f"The skops file could not be loaded: {exc}.") from None


def _json_safe(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return type(value).__name__
    if isinstance(value, type):
        return value.__name__
    return repr(value)[:200]


def hyperparameters_of(estimator: Any) -> dict[str, Any]:
    params = estimator.get_params(deep=True)
    return {key: _json_safe(value) for key, value in sorted(params.items())}


def check_estimator(estimator: Any, *, task: str) -> None:
    from sklearn.base import is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict") or not callable(estimator.predict):
        raise ArtifactRejected(
            f"The artifact holds a {type(estimator).__name__}, which has no predict method."
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise ArtifactRejected(
            f"The {type(estimator).__name__} in the artifact is not fitted."
        ) from None
    except TypeError as exc:
        raise ArtifactRejected(f"The artifact does not hold an estimator: {exc}.") from None
    if task == "classification" and not is_classifier(estimator):
        raise ArtifactRejected(
            "The model's task is classification but "
            f"{type(estimator).__name__} is not a classifier."
        )
    if task == "classification" and getattr(estimator, "classes_", None) is None:
        # The signature records classes_: its order fixes the positive class (classes[1])
        # for every evaluation, monitor and fairness audit (common.metrics).
        raise ArtifactRejected(
            f"The {type(estimator).__name__} in the artifact has no classes_, "
            "so its classes (and positive class) cannot be recorded."
        )
    if task == "regression" and not is_regressor(estimator):
        raise ArtifactRejected(
            f"The model's task is regression but {type(estimator).__name__} is not a regressor."
        )


def _output_of(estimator: Any, task: str) -> dict[str, Any]:
    if task == "classification":
        classes = getattr(estimator, "classes_", None)
        # Plain Python values in classes_ order (numpy.str_ -> str, numpy.bool_ -> bool).
        plain = [
            c.item() if isinstance(c, np.generic) else c
            for c in ([] if classes is None else classes)
        ]
        return {
            "kind": "label",
            "classes": _json_safe(plain),
            "probabilities": hasattr(estimator, "predict_proba"),
        }
    return {"kind": "value"}


def build_signature(
    estimator: Any,
    *,
    task: str,
    declared: list[dict[str, str]] | None,
    dataset_schema: list[dict[str, str]] | None,
    target: str,
) -> dict[str, Any]:
    """Reconcile the declared inputs, the estimator and the training data's schema."""
    fitted_names = getattr(estimator, "feature_names_in_", None)
    fitted_names = [str(n) for n in fitted_names] if fitted_names is not None else None
    n_features = getattr(estimator, "n_features_in_", None)
    data_types = {c["name"]: c["dtype"] for c in dataset_schema} if dataset_schema else {}

    if declared:
        inputs = [{"name": str(c["name"]), "dtype": str(c["dtype"])} for c in declared]
    elif fitted_names is not None:
        inputs = [{"name": n, "dtype": data_types.get(n, "float64")} for n in fitted_names]
    elif dataset_schema:
        inputs = [c for c in dataset_schema if c["name"] != target]
    elif n_features is not None:
        inputs = [{"name": f"x{i}", "dtype": "float64"} for i in range(int(n_features))]
    else:
        raise ArtifactRejected("No signature was given and none can be derived from the model.")

    names = [c["name"] for c in inputs]
    if len(set(names)) != len(names):
        raise ArtifactRejected("The signature names a feature more than once.")
    if fitted_names is not None and fitted_names != names:
        raise ArtifactRejected(
            "The signature's features differ from those the model was fitted on: "
            f"model has {fitted_names}, signature has {names}."
        )
    if n_features is not None and int(n_features) != len(names):
        raise ArtifactRejected(
            f"The model expects {int(n_features)} features but the signature lists {len(names)}."
        )
    if dataset_schema is not None:
        missing = [n for n in names if n not in data_types]
        if missing:
            raise ArtifactRejected(
                f"The training dataset has no column(s) {missing} that the signature names."
            )
        if target and target not in data_types:
            raise ArtifactRejected(f"The training dataset has no target column {target!r}.")
        if target in names:
            raise ArtifactRejected(f"The target column {target!r} is also listed as an input.")
        clashes = [
            f"{c['name']} ({c['dtype']} vs {data_types[c['name']]})"
            for c in inputs
            if dtype_family(c["dtype"]) != dtype_family(data_types[c["name"]])
        ]
        if clashes:
            raise ArtifactRejected(
                "The signature's types differ from the training dataset's: " + ", ".join(clashes)
            )
    return {"inputs": inputs, "output": _output_of(estimator, task)}


def dtype_family(dtype: str) -> str:
    if dtype.startswith(("float", "int", "uint")):
        return "numeric"
    if dtype in ("string", "category", "object", "large_string", "dictionary"):
        return "text"
    return dtype


def smoke_predict(estimator: Any, sample: Any) -> None:
    """Call predict on a few training rows: the artifact must actually work."""
    try:
        predictions = estimator.predict(sample)
    except Exception as exc:
        raise ArtifactRejected(f"The model fails to predict on training rows: {exc}.") from None
    if len(predictions) != len(sample):
        raise ArtifactRejected("The model returned a different number of predictions than rows.")


def inspect_artifact(
    path: str,
    *,
    task: str,
    declared_inputs: list[dict[str, str]] | None,
    dataset_schema: list[dict[str, str]] | None,
    target: str,
    sample: Any = None,
) -> ArtifactReport:
    estimator, types = load_estimator(path)
    check_estimator(estimator, task=task)
    signature = build_signature(
        estimator, task=task, declared=declared_inputs, dataset_schema=dataset_schema, target=target
    )
    if sample is not None:
        smoke_predict(estimator, sample[[c["name"] for c in signature["inputs"]]])
    return ArtifactReport(
        estimator_class=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        signature=signature,
        hyperparameters=hyperparameters_of(estimator),
        types=types,
    )
