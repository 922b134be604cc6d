"""kombu's Redis transport with one Redis client per channel instead of one per command.

kombu's Redis channel builds a new `redis.Redis` object for every synchronous operation: each
message a worker takes (the unacked bookkeeping), each late ack and each publish. Building one costs
about a millisecond of CPU (redis-py 5+ sets up retries, callbacks and a response parser per client),
more than the command itself. A client only borrows connections from the channel's pool, so one
client per channel, kept until the pool is dropped (close, fork), sends the very same commands.

Selected with Celery's `broker_transport` for `redis://` brokers (`celery_messages.REDIS_TRANSPORT`).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """Caches the synchronous client; the asynchronous one (BRPOP) is kombu's own `client`."""

    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        client = self._sync_client
        if client is None or client.connection_pool is not self._pool:
            client = self._sync_client = super()._create_client(asynchronous=False)  # type: ignore[no-untyped-call]
        return client

    def _disconnect_pools(self) -> None:
        self._sync_client = None
        super()._disconnect_pools()  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel
