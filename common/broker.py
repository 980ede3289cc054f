"""Celery's filesystem transport (the embedded broker), with atomic message files.

kombu's filesystem transport opens a message file and then writes it. A worker
polling the folder can take the file in between, read it empty and stop with
"Unrecoverable error: JSONDecodeError": a race between any sender (web, beat,
another worker) and a worker, whose odds grow with the number of messages (the
job sweep runs every JOB_HEARTBEAT_SECONDS). Here a message is written under a
name that consumers skip (they take only ``*.<queue>.msg``) and renamed into
place, which is atomic on one filesystem: a consumer sees a whole message or none.

Selected by ``CELERY_BROKER_TRANSPORT`` when ``CELERY_BROKER_URL`` is ``filesystem://``.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put ``payload`` onto ``queue``: write it aside, then rename it into the queue."""
        # The same name as kombu's (its consumers order messages by it).
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = f"{path}.part"
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
