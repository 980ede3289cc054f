"""Cache plumbing: a JSON serializer so that nothing read from Redis is unpickled."""

from __future__ import annotations

import json
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


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


class _ReusingClient(RedisCacheClient):
    """Django builds a new redis.Redis object (and its ~170 response callbacks)
    on every cache call; a redis.Redis is thread-safe and cheap to keep, so keep
    one per connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(
                connection_pool=self._get_connection_pool(write)
            )
        return client


class RedisCache(DjangoRedisCache):
    """Django's Redis cache with JSON values and reused clients."""

    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ReusingClient
        self._options.setdefault("serializer", JSONSerializer)
