"""The client: one ``requests`` session, the server's error shape as typed errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

TOKEN_VARIABLE = "MODELGATE_TOKEN"  # noqa: S105 (the name of a variable, not a secret)
URL_VARIABLE = "MODELGATE_URL"


class ModelGateError(Exception):
    """A refusal from the server, in its one error shape
    (``{"error": {"code", "message", "details"}}``), or a transport failure."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, details: Any = None
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}


class Timeout(ModelGateError):
    """A job (a version's validation) did not finish in the time given."""


class UntrustedArtifact(ModelGateError):
    """The artifact holds types that skops does not trust by default."""


def _progress(stream: Any) -> Callable[[str], None] | None:
    """A one-line progress display on a terminal; nothing when not a terminal."""
    if not getattr(stream, "isatty", lambda: False)():
        return None

    def show(text: str) -> None:
        stream.write(f"\r{text[:78]:<78}")
        stream.flush()

    return show


class ModelGate:
    """A session with one ModelGate server, as one token's user.

    ``url`` defaults to ``$MODELGATE_URL``, ``token`` to ``$MODELGATE_TOKEN``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60,
        session: requests.Session | None = None,
    ) -> None:
        url = url or os.environ.get(URL_VARIABLE)
        if not url:
            raise ModelGateError("no_url", f"Give the server's URL (or set {URL_VARIABLE}).")
        token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise ModelGateError("no_token", f"Give an API token (or set {TOKEN_VARIABLE}).")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.session.headers["Accept"] = "application/json"

    # ------------------------------------------------------------------ transport

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.url}/api/v1/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; the decoded JSON body, or a :class:`ModelGateError`."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, self._url(path), **kwargs)
        except requests.RequestException as exc:
            raise ModelGateError("unreachable", f"{method} {path}: {exc}") from None
        if response.status_code >= 400:
            raise self._error(response)
        if not response.content:
            return None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.content

    @staticmethod
    def _error(response: requests.Response) -> ModelGateError:
        try:
            error = response.json()["error"]
            code, message, details = error["code"], error["message"], error.get("details")
        except (ValueError, KeyError, TypeError):
            code, message, details = "http_error", response.text[:500] or response.reason, None
        return ModelGateError(code, message, status=response.status_code, details=details)

    def _all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated list (follows ``next``)."""
        items: list[dict[str, Any]] = []
        page: Any = self.request("GET", path, params=params)
        while True:
            if isinstance(page, list):
                return items + page
            items.extend(page.get("results", []))
            if not page.get("next"):
                return items
            page = self.request("GET", page["next"])

    # ------------------------------------------------------------------ registry

    def model(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"models/{name}/")

    def versions(self, model: str) -> list[dict[str, Any]]:
        return self._all(f"models/{model}/versions/")

    def version(self, model: str, number: int) -> dict[str, Any]:
        return self.request("GET", f"models/{model}/versions/{number}/")

    def aliases(self, model: str) -> list[dict[str, Any]]:
        return self._all(f"models/{model}/aliases/")

    def resolve(self, reference: str) -> dict[str, Any]:
        """``"model@alias"`` or ``"model@3"`` (a version number) → the version."""
        model, _, which = reference.partition("@")
        if not model or not which:
            raise ModelGateError(
                "invalid", f"Name a version as model@alias or model@N: {reference!r}"
            )
        if which.isdigit():
            return self.version(model, int(which))
        return self.request("GET", f"models/{model}/aliases/{which}")["version"]

    def upload_dataset(
        self, model: str, frame: Any, *, name: str, role: str = "training", description: str = ""
    ) -> dict[str, Any]:
        """Upload a pandas DataFrame as Parquet; returns the dataset."""
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        files = {"file": (f"{name}.parquet", buffer.getvalue(), "application/octet-stream")}
        data = {"model": model, "name": name, "role": role, "description": description}
        return self.request("POST", "datasets/", data=data, files=files)

    def register(
        self,
        estimator: Any,
        *,
        model: str,
        training_data: Any = None,
        target: str = "",
        metrics: dict[str, float] | None = None,
        parent: int | None = None,
        source: dict[str, str] | str | None = None,
        description: str = "",
        tags: Iterable[str] = (),
        wait: bool = True,
        wait_timeout: float = 300,
        progress: Any = sys.stderr,
    ) -> dict[str, Any]:
        """Save ``estimator`` with skops (or send a saved ``.skops`` file, given its
        path), register it, wait for its validation.

        ``training_data``: a dataset id, or a DataFrame (uploaded first as the
        model's training dataset). ``source``: ``{"run_id", "commit"}`` or a run id.
        Returns the version once ready (or failed: its ``status_reason`` says why);
        with ``wait=False`` at once (``pending``). :class:`Timeout` if validation
        takes longer than ``wait_timeout`` seconds.
        """
        import skops.io as sio

        dataset_id = training_data
        if training_data is not None and not isinstance(training_data, int):
            dataset_id = self.upload_dataset(
                model, training_data, name=f"{model}-training", role="training"
            )["id"]
        metadata: dict[str, Any] = {
            "metrics": dict(metrics or {}),
            "training_dataset": dataset_id,
            "target_column": target,
            "parent": parent,
            "description": description,
            "tags": list(tags),
        }
        if source:
            metadata["source"] = {"run_id": source} if isinstance(source, str) else dict(source)
        if isinstance(estimator, str | os.PathLike):  # an artifact saved already (the CLI)
            with open(estimator, "rb") as handle:
                artifact = handle.read()
        else:
            artifact = sio.dumps(estimator)
        files = {
            "artifact": ("model.skops", artifact, "application/octet-stream"),
            "metadata": (None, json.dumps(metadata), "application/json"),
        }
        version = self.request("POST", f"models/{model}/versions/", files=files)
        if not wait:
            return version
        return self.wait_for_version(
            model, version["number"], timeout=wait_timeout, progress=progress
        )

    def wait_for_version(
        self, model: str, number: int, *, timeout: float = 300, progress: Any = sys.stderr
    ) -> dict[str, Any]:
        """Poll the version until its validation job decided (ready or failed)."""
        show = _progress(progress)
        started = time.monotonic()
        delay = 0.2
        while True:
            version = self.version(model, number)
            elapsed = time.monotonic() - started
            if show:
                show(f"{model} v{number}: {version['status']} ({elapsed:.0f}s)")
            if version["status"] != "pending":
                if show:
                    progress.write("\n")
                return version
            if elapsed > timeout:
                raise Timeout(
                    "timeout",
                    f"{model} v{number} was still being validated after {timeout:g}s.",
                    details={"version": number},
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def load(self, reference: str, *, trusted: Iterable[str] = ()) -> Any:
        """Download the version's artifact, check its SHA-256, load it with skops.

        Only the types skops trusts by default are loaded (plus ``trusted``, names
        you vouch for); anything else raises :class:`UntrustedArtifact`. Never pickle.
        """
        import skops.io as sio

        version = self.resolve(reference)
        artifact = version["artifact"]
        blob = self.request("GET", artifact["download_url"])
        digest = hashlib.sha256(blob).hexdigest()
        if digest != artifact["sha256"]:
            raise ModelGateError(
                "digest_mismatch",
                f"The artifact of {reference} has SHA-256 {digest}, the registry says "
                f"{artifact['sha256']}: not loaded.",
            )
        with tempfile.NamedTemporaryFile(suffix=".skops") as handle:
            handle.write(blob)
            handle.flush()
            unknown = sorted(set(sio.get_untrusted_types(file=handle.name)) - set(trusted))
            if unknown:
                raise UntrustedArtifact(
                    "untrusted_types",
                    f"{reference} holds types skops does not trust by default: "
                    f"{', '.join(unknown)}. Pass trusted=[...] if you vouch for them.",
                    details={"types": unknown},
                )
            return sio.load(handle.name, trusted=list(trusted) or None)

    # ------------------------------------------------------------------ monitoring, serving

    def log_predictions(
        self,
        model: str,
        version: int,
        frame: Any,
        *,
        batch_id: str,
        request_ids: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Post a batch of predictions (features, ``prediction``, optional ``timestamp``
        and ``score``); ``request_ids`` joins them with labels later."""
        frame = frame.copy()
        if request_ids is not None:
            frame.insert(0, "request_id", list(request_ids))
        return self.request(
            "POST",
            f"models/{model}/versions/{version}/predictions/",
            json={"batch_id": batch_id, "columns": _columns(frame)},
        )

    def log_labels(self, model: str, frame: Any, *, batch_id: str) -> dict[str, Any]:
        """Post a batch of labels (``request_id``, ``label``)."""
        return self.request(
            "POST",
            f"models/{model}/labels/",
            json={"batch_id": batch_id, "columns": _columns(frame)},
        )

    def alerts(self, model: str | None = None) -> list[dict[str, Any]]:
        return self._all("alerts/", params={"model": model} if model else None)

    # ------------------------------------------------------------------ lifecycle, governance

    def retrain(self, model: str, *, reason: str = "", **fields: Any) -> dict[str, Any]:
        """Ask for a retraining run (202): ``strategy``, ``params``, ``parent``,
        ``training_dataset``, ``fairness_audit``, ``force``, ... as the API takes."""
        body = {"reason": reason, **{k: v for k, v in fields.items() if v is not None}}
        return self.request("POST", f"models/{model}/retrain/", json=body)

    def runs(self, model: str) -> list[dict[str, Any]]:
        return self._all(f"models/{model}/retraining-runs/")

    def run(self, model: str, run_id: int) -> dict[str, Any]:
        return self.request("GET", f"models/{model}/retraining-runs/{run_id}/")

    def review(self, model: str, number: int) -> dict[str, Any]:
        return self.request("GET", f"models/{model}/versions/{number}/review/")

    def deploy(
        self, model: str, environment: str, version: int, *, strategy: str = "direct", **fields: Any
    ) -> dict[str, Any]:
        """Start a deployment of ``version`` to ``environment`` (the deploy gate decides)."""
        body = {"version": version, "strategy": strategy, **fields}
        return self.request(
            "POST", f"models/{model}/environments/{environment}/deployments/", json=body
        )

    def deployments(self, model: str, environment: str) -> list[dict[str, Any]]:
        return self._all(f"models/{model}/environments/{environment}/deployments/")

    def predict(
        self, model: str, environment: str, frame: Any, *, request_id: str | None = None
    ) -> list[Any]:
        """Predictions from the serving endpoint of ``model`` in ``environment``.

        ``request_id`` is sent as ``X-Request-ID``: the server logs row *i* as
        ``<request_id>:<i>`` (one row: ``<request_id>``), what labels join on later."""
        body = {"dataframe_split": {"columns": list(frame.columns), "data": _rows(frame)}}
        headers = {"X-Request-ID": request_id} if request_id else None
        answer = self.request(
            "POST",
            f"{self.url}/serve/{model}/{environment}/invocations",
            json=body,
            headers=headers,
        )
        return answer["predictions"]

    def status(self, model: str) -> dict[str, Any]:
        """One picture of a model: its versions, aliases, open alerts and latest runs."""
        return {
            "model": self.model(model),
            "versions": self.versions(model),
            "aliases": self.aliases(model),
            "runs": self.runs(model)[:5],
        }


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _columns(frame: Any) -> dict[str, list[Any]]:
    return {str(c): [_plain(v) for v in frame[c].tolist()] for c in frame.columns}


def _rows(frame: Any) -> list[list[Any]]:
    return [[_plain(v) for v in row] for row in frame.itertuples(index=False, name=None)]
