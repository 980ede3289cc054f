"""Safe inspection and loading of model artifacts (pure: no Django).

Only skops files are accepted, and only when every check below has passed, in
this order, before anything from the file is constructed:

1. Pickle and joblib are recognised by their *content* (whatever the file is
   called) and refused.
2. The zip archive's directory is read before any member is inflated: the
   number of members, their names (only the names skops writes; no absolute
   paths, ``..``, backslashes, drive letters or NULs), their declared sizes
   against ``ARTIFACT_MAX_UNCOMPRESSED_MB`` and their compression ratios
   against ``ARTIFACT_MAX_RATIO``. Then every member is inflated by a reader
   that stops at the limit whatever the headers claim (which also verifies
   each CRC); sparse matrices (``.npz``, themselves zip archives) get the same
   treatment, and every ``.npy`` header must declare exactly the data present.
3. The schema must use every member and no other, and cannot make skops read
   more than the limit by naming one member many times.
4. Every type the schema names, and every type skops' ``get_untrusted_types``
   reports, must be on the explicit allow-list (``registry.artifact_types``);
   only then is ``skops.io.load`` called, trusting exactly what skops asked about.
5. The loaded model's trees, boosting stages and sparse matrices are validated
   (``registry.artifact_state``) before the model is returned, so before any
   prediction.

docs/artifacts.md describes the checks, the allow-list and how an operator
adds a name.
"""

from __future__ import annotations

import io
import json
import lzma
import math
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from registry.artifact_state import StateRejected, validate_loaded
from registry.artifact_types import ALLOWED_TYPES, REFUSAL_HINTS

MiB = 1024 * 1024

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


# --- configuration ------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what an artifact may inflate to (the settings' defaults)."""

    max_members: int = 20_000
    max_uncompressed: int = 1024 * MiB
    max_ratio: int = 100


# The registry app points this at Django's settings (RegistryConfig.ready), so
# the limits and the operator's extra types are read at each load and this
# module imports no Django.
_settings_source: Callable[[], Any] | None = None


def use_settings(source: Callable[[], Any]) -> None:
    """Read ``ARTIFACT_*`` settings from ``source()`` at each load."""
    global _settings_source
    _settings_source = source


def archive_limits() -> ArchiveLimits:
    settings = _settings_source() if _settings_source is not None else None
    default = ArchiveLimits()
    if settings is None:
        return default
    return ArchiveLimits(
        max_members=int(getattr(settings, "ARTIFACT_MAX_MEMBERS", default.max_members)),
        max_uncompressed=int(
            getattr(settings, "ARTIFACT_MAX_UNCOMPRESSED_BYTES", default.max_uncompressed)
        ),
        max_ratio=int(getattr(settings, "ARTIFACT_MAX_RATIO", default.max_ratio)),
    )


# --- the allow-list -------------------------------------------------------------------

_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")

# Exact type names other apps vouch for (their own estimator wrappers), added
# from an AppConfig.ready with ``register_trusted_types``; never a prefix.
_trusted_extra: set[str] = set()


def type_name_problem(name: str) -> str | None:
    """Why ``name`` cannot go on the allow-list (None if it can)."""
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        return f"{name!r} is not a fully qualified name such as 'package.module.Class'"
    return None


def register_trusted_types(*type_names: str) -> None:
    """Allow these exact ``module.Class`` names in artifacts (e.g. governance's
    fairness-mitigated classifiers). Each must be a plain data-holding class."""
    for name in type_names:
        problem = type_name_problem(name)
        if problem:
            raise ValueError(problem)
    _trusted_extra.update(type_names)


def _operator_types() -> frozenset[str]:
    settings = _settings_source() if _settings_source is not None else None
    return frozenset(getattr(settings, "ARTIFACT_EXTRA_TYPES", ()) or ())


def is_allowed(type_name: str) -> bool:
    return (
        type_name in ALLOWED_TYPES or type_name in _trusted_extra or type_name in _operator_types()
    )


def _refuse_types(refused: list[str]) -> None:
    hints = [f"{name}: {REFUSAL_HINTS[name]}" for name in refused if name in REFUSAL_HINTS]
    raise ArtifactRejected(
        "The artifact names types that are not on the allow-list: "
        + ", ".join(refused)
        + (" (" + "; ".join(hints) + ")" if hints else "")
        + ". docs/artifacts.md lists the allowed types; an operator adds one with "
        "ARTIFACT_EXTRA_TYPES."
    )


# --- content sniffing -----------------------------------------------------------------


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


# --- the archive ----------------------------------------------------------------------

# The names skops writes: its schema, numpy arrays and sparse matrices named by
# an object id, bytes named by a uuid4.
_SKOPS_MEMBER = re.compile(
    r"^(?:schema\.json|[0-9]{1,20}\.np[yz]"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bin)$"
)
# What scipy.sparse.save_npz writes inside a sparse matrix's .npz.
_NPZ_MEMBER = re.compile(
    r"^(?:data|indices|indptr|offsets|row|col|coords|format|shape|_is_array)\.npy$"
)
_NPZ_MAX_MEMBERS = 16
_DRIVE = re.compile(r"^[A-Za-z]:")
_METHODS = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}
# Ratios are only held against members (and archives) bigger than this: small
# ones (the JSON schema, tiny arrays) compress well and can do no harm.
_RATIO_FLOOR = MiB
_CHUNK = MiB
_HEAD = 64 * 1024  # enough for any .npy header numpy will read
# Bytes per central directory entry that we allow for before zipfile parses
# the directory: 46 fixed, the name (at most 64 for a skops member), extras.
_DIRECTORY_ENTRY_BUDGET = 256
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_INFLATE_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)


def member_name_problem(name: str, pattern: re.Pattern[str] = _SKOPS_MEMBER) -> str | None:
    """Why an archive member's name is refused (None if it is acceptable)."""
    if "\x00" in name:
        return "holds a NUL byte"
    if "\\" in name:
        return "holds a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "names a drive"
    if ".." in name:
        return "holds '..'"
    if not pattern.match(name):
        return "is not a member skops writes"
    return None


def _size(n: int) -> str:
    return f"{n / MiB:g} MB" if n >= MiB else f"{n} bytes"


class _Budget:
    """The bytes an artifact may declare and inflate, over all its archives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.declared = 0
        self.inflated = 0

    def declare(self, size: int) -> None:
        self.declared += size
        if self.declared > self.limit:
            raise ArtifactRejected(
                f"The archive declares more than {_size(self.limit)} of uncompressed "
                "content (ARTIFACT_MAX_UNCOMPRESSED_MB); it is refused before inflating."
            )

    def spend(self, size: int) -> None:
        self.inflated += size
        if self.inflated > self.limit:
            raise ArtifactRejected(
                f"The archive inflates to more than {_size(self.limit)} "
                "(ARTIFACT_MAX_UNCOMPRESSED_MB); inflating stopped at the limit."
            )


def read_bounded(stream: IO[bytes], budget: _Budget, declared: int, *, keep: int) -> bytes:
    """Inflate ``stream`` in chunks, charging ``budget``; return its first ``keep`` bytes.

    Stops as soon as the budget is spent or the member grows past its
    ``declared`` size, whatever the stream would go on to produce.
    """
    kept: list[bytes] = []
    kept_size = 0
    produced = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(kept)
        produced += len(chunk)
        budget.spend(len(chunk))
        if produced > declared:
            raise ArtifactRejected(
                "An archive member inflates to more than the size its header declares."
            )
        if kept_size < keep:
            kept.append(chunk[: keep - kept_size])
            kept_size += len(kept[-1])


def _directory_size(handle: IO[bytes], size: int, max_members: int) -> None:
    """Bound the central directory from its end record, before zipfile parses it.

    zipfile reads as many entries as the directory size in the end record
    (or its zip64 twin, which it prefers when present) says; that size is
    what bounds its work, so it is held against the member limit here.
    """
    tail_size = min(size, _EOCD.size + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or tail_size - at < _EOCD.size:
        raise ArtifactRejected("The artifact is truncated or corrupt: it has no zip directory.")
    _sig, _d, _cd, _n, entries, directory, _offset, _comment = _EOCD.unpack_from(tail, at)
    end = size - tail_size + at
    if end >= _EOCD64_LOCATOR.size + _EOCD64.size:
        handle.seek(end - _EOCD64_LOCATOR.size)
        if handle.read(4) == b"PK\x06\x07":
            handle.seek(end - _EOCD64_LOCATOR.size - _EOCD64.size)
            record = handle.read(_EOCD64.size)
            if record[:4] == b"PK\x06\x06":
                fields = _EOCD64.unpack(record)
                entries, directory = fields[7], fields[8]
    if entries > max_members or directory > max_members * _DIRECTORY_ENTRY_BUDGET:
        raise ArtifactRejected(
            f"The archive has more than {max_members} members (ARTIFACT_MAX_MEMBERS)."
        )


def _open_checked(
    handle: IO[bytes],
    size: int,
    *,
    limits: ArchiveLimits,
    budget: _Budget,
    max_members: int,
    pattern: re.Pattern[str],
    what: str,
    required: str | None = None,
) -> zipfile.ZipFile:
    """Open a zip archive after checking its directory; nothing is inflated yet."""
    _directory_size(handle, size, max_members)
    handle.seek(0)
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ArtifactRejected(f"The {what} is truncated or corrupt: {exc}.") from None
    infos = archive.infolist()
    if len(infos) > max_members:
        archive.close()
        raise ArtifactRejected(
            f"The {what} has {len(infos)} members, more than {max_members} (ARTIFACT_MAX_MEMBERS)."
        )
    seen: set[str] = set()
    total = 0
    try:
        if required is not None and required not in archive.NameToInfo:
            raise ArtifactRejected(f"The {what} has no skops {required}: not a skops file.")
        for info in infos:
            # orig_filename keeps what zipfile cuts at a NUL byte.
            raw_name = info.orig_filename
            problem = member_name_problem(raw_name, pattern)
            if problem:
                raise ArtifactRejected(
                    f"The {what} member {raw_name[:80]!r} is refused: its name {problem}."
                )
            if info.filename in seen:
                raise ArtifactRejected(f"The {what} holds the member {info.filename!r} twice.")
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise ArtifactRejected(f"The {what} member {info.filename!r} is encrypted.")
            if info.compress_type not in _METHODS:
                raise ArtifactRejected(
                    f"The {what} member {info.filename!r} uses an unsupported compression."
                )
            if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise ArtifactRejected(
                    f"The {what} member {info.filename!r} would inflate "
                    f"{info.file_size // max(info.compress_size, 1)}:1, more than "
                    f"{limits.max_ratio}:1 (ARTIFACT_MAX_RATIO); it is refused before inflating."
                )
            budget.declare(info.file_size)
            total += info.file_size
        if total > _RATIO_FLOOR and total > limits.max_ratio * max(size, 1):
            raise ArtifactRejected(
                f"The {what} would inflate {total // max(size, 1)}:1, more than "
                f"{limits.max_ratio}:1 (ARTIFACT_MAX_RATIO); it is refused before inflating."
            )
    except ArtifactRejected:
        archive.close()
        raise
    return archive


def _npy_problem(head: bytes, size: int) -> str | None:
    """Why a .npy member's header is refused: it must declare exactly its data."""
    stream = io.BytesIO(head)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            return f"uses .npy format {version}"
    except (ValueError, TypeError, SyntaxError, EOFError):
        return "is not a valid .npy array"
    if dtype.hasobject:
        return "holds Python objects"
    expected = stream.tell() + math.prod(shape) * dtype.itemsize
    if expected != size:
        return f"declares {expected} bytes but holds {size}"
    return None


def _inflate_members(
    archive: zipfile.ZipFile, *, limits: ArchiveLimits, budget: _Budget, what: str
) -> dict[str, bytes]:
    """Inflate every member within the budget, checking each as it comes.

    Returns the members whose whole content is needed later (the schema); the
    rest are read and dropped (their CRC is still verified).
    """
    kept: dict[str, bytes] = {}
    for info in archive.infolist():
        name = info.filename
        whole = name == "schema.json" or name.endswith(".npz")
        try:
            with archive.open(info) as stream:
                content = read_bounded(
                    stream, budget, info.file_size, keep=info.file_size if whole else _HEAD
                )
        except _INFLATE_ERRORS as exc:
            raise ArtifactRejected(f"The {what} member {name!r} is corrupt: {exc}.") from None
        if name.endswith(".npy"):
            problem = _npy_problem(content, info.file_size)
            if problem:
                raise ArtifactRejected(f"The {what} member {name!r} is refused: it {problem}.")
        elif name.endswith(".npz"):
            # A sparse matrix is itself a (compressed) zip archive: same checks,
            # same budget.
            with _open_checked(
                io.BytesIO(content),
                len(content),
                limits=limits,
                budget=budget,
                max_members=_NPZ_MAX_MEMBERS,
                pattern=_NPZ_MEMBER,
                what=f"sparse matrix {name!r}",
            ) as inner:
                _inflate_members(
                    inner, limits=limits, budget=budget, what=f"sparse matrix {name!r}"
                )
        elif name == "schema.json":
            kept[name] = content
    return kept


def _scan_schema(schema: Any) -> tuple[set[str], list[tuple[Any, Any]]]:
    """Every type the schema names, and every (object id, member) it reads."""
    types: set[str] = set()
    reads: list[tuple[Any, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            if isinstance(node.get("__loader__"), str) and "file" in node:
                reads.append((node.get("__id__"), node["file"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, reads


def _check_reads(reads: list[tuple[Any, Any]], sizes: dict[str, int], limit: int) -> None:
    """The schema must read every member and nothing else, and not too often.

    skops reads a member once per node that names it, except that a node whose
    ``__id__`` it has seen is not built again: so naming one member from many
    nodes would have it inflated many times.
    """
    used: set[str] = set()
    counted: set[tuple[Any, str]] = set()
    total = 0
    for object_id, name in reads:
        if not isinstance(name, str) or name not in sizes or name == "schema.json":
            raise ArtifactRejected(
                f"The skops schema names a member {str(name)[:80]!r} that the archive "
                "does not hold."
            )
        used.add(name)
        key = (object_id, name)
        if isinstance(object_id, int | str) and object_id:
            if key in counted:
                continue
            counted.add(key)
        total += sizes[name]
        if total > limit:
            raise ArtifactRejected(
                f"The skops schema reads its members to more than {_size(limit)} "
                "(ARTIFACT_MAX_UNCOMPRESSED_MB)."
            )
    unused = sorted(set(sizes) - used - {"schema.json"})
    if unused:
        raise ArtifactRejected(
            f"The archive holds member(s) the skops schema does not use: {', '.join(unused[:5])}."
        )


def check_archive(path: str, limits: ArchiveLimits | None = None) -> dict[str, Any]:
    """Check the skops archive at ``path`` (steps 2 and 3 above); return its schema."""
    limits = limits or archive_limits()
    size = os.path.getsize(path)
    budget = _Budget(limits.max_uncompressed)
    with (
        open(path, "rb") as handle,
        _open_checked(
            handle,
            size,
            limits=limits,
            budget=budget,
            max_members=limits.max_members,
            pattern=_SKOPS_MEMBER,
            what="archive",
            required="schema.json",
        ) as archive,
    ):
        sizes = {info.filename: info.file_size for info in archive.infolist()}
        kept = _inflate_members(archive, limits=limits, budget=budget, what="archive")
    try:
        schema = json.loads(kept["schema.json"])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactRejected("The skops schema.json is not valid JSON.") from None
    except RecursionError:
        raise ArtifactRejected("The skops schema.json is nested too deeply.") from None
    if not isinstance(schema, dict):
        raise ArtifactRejected("The skops schema.json does not describe an object.")
    _types, reads = _scan_schema(schema)
    _check_reads(reads, sizes, limits.max_uncompressed)
    return schema


def check_types(path: str, schema: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """Return (every type named, the types skops must be told to trust)."""
    import skops.io as sio

    if schema is None:
        schema = check_archive(path)
    named, _reads = _scan_schema(schema)
    # Our own walk first: a refused name never reaches skops.
    refused = sorted(t for t in named if not is_allowed(t))
    if refused:
        _refuse_types(refused)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises assorted errors on malformed files
        raise ArtifactRejected(f"The skops file cannot be read: {exc}.") from None
    refused = sorted(t for t in untrusted if not is_allowed(t))
    if refused:
        _refuse_types(refused)
    return sorted(named), list(untrusted)


def load_estimator(path: str) -> tuple[Any, list[str]]:
    """Load the estimator in a skops file after every safety check has passed."""
    import skops.io as sio

    with open(path, "rb") as handle:
        sniff(handle.read(64))
    types, untrusted = check_types(path, check_archive(path))
    try:
        estimator = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise ArtifactRejected(f"The skops file could not be loaded: {exc}.") from None
    try:
        validate_loaded(estimator)
    except StateRejected as exc:
        raise ArtifactRejected(
            f"The model's internal state is inconsistent and it is refused before any "
            f"prediction: {exc}."
        ) from None
    return estimator, types


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
