"""Cache plumbing: a JSON serializer so that nothing read from Redis is unpickled."""

from __future__ import annotations

import json
from typing import Any


class JSONSerializer:
    """Django's Redis cache pickles values by default; ours are plain JSON."""

    def __init__(self, protocol: Any = None) -> None:
        pass

    def dumps(self, obj: Any) -> Any:
        if type(obj) is int:  # kept raw so that Redis INCR/DECR work
            return obj
        return json.dumps(obj, separators=(",", ":")).encode()

    def loads(self, data: Any) -> Any:
        try:
            return int(data)
        except ValueError:
            return json.loads(data)
