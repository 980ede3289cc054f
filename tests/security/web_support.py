"""A real gunicorn web process on the test database, for tests that kill it (started as
every real process is: tests/processes.py), and multipart bodies for it."""

from __future__ import annotations

import signal

from tests.processes import RealProcess, free_port, start_web, stop

WebProcess = RealProcess
__all__ = ["WebProcess", "free_port", "multipart", "start_web", "stop_web"]


def stop_web(web: RealProcess) -> None:
    stop(web, signal.SIGTERM, timeout=30)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = "modelgate-test-boundary-7d1f"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data) in files.items():
        parts.append(
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
