"""The embedded broker writes each message file whole before a worker can see it."""

from __future__ import annotations

import os
from pathlib import Path

from kombu import Connection

from common import broker


def test_a_message_enters_the_queue_folder_only_once_it_is_written(tmp_path, monkeypatch):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    connection = Connection(
        "filesystem://localhost//",
        transport="common.broker:Transport",
        transport_options={
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
        },
    )
    seen = []
    rename = os.replace

    def spy(source, target):  # what a polling worker would find just before the rename
        seen.append((sorted(os.listdir(folders["queue"])), Path(source).read_bytes()))
        rename(source, target)

    monkeypatch.setattr(broker.os, "replace", spy)
    with connection:
        channel = connection.channel()
        channel._put("quick", {"job": 7})
        [(listing, written)] = seen
        assert not [name for name in listing if name.endswith(".quick.msg")]
        assert written == b'{"job": 7}'
        assert channel._get("quick") == {"job": 7}
        assert os.listdir(folders["queue"]) == []
