"""The Storage queue between the webhook intake and its worker (azure-storage-queue aio).

Messages are JSON, base64-encoded as the Functions queue trigger expects by default.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient


@dataclass
class ReceivedMessage:
    body: dict[str, Any]
    dequeue_count: int
    id: str
    pop_receipt: str


class NotificationQueue:
    def __init__(self, client: QueueClient) -> None:
        self._client = client
        self._created = False

    @classmethod
    def from_connection_string(cls, connection_string: str, name: str) -> NotificationQueue:
        return cls(
            QueueClient.from_connection_string(
                connection_string,
                name,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        )

    @classmethod
    def from_account_url(cls, account_url: str, name: str, credential: Any) -> NotificationQueue:
        return cls(
            QueueClient(
                account_url,
                name,
                credential=credential,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        )

    async def ensure(self) -> None:
        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                await self._client.create_queue()
            self._created = True

    async def send(self, body: dict[str, Any]) -> None:
        await self.ensure()
        await self._client.send_message(json.dumps(body, separators=(",", ":")))

    async def receive(self, max_messages: int = 32, visibility_timeout: int = 60) -> list[ReceivedMessage]:
        await self.ensure()
        out: list[ReceivedMessage] = []
        async for m in self._client.receive_messages(
            messages_per_page=max_messages, max_messages=max_messages, visibility_timeout=visibility_timeout
        ):
            try:
                body = json.loads(m.content)
            except (TypeError, ValueError):
                body = {"kind": "malformed", "raw": str(m.content)[:500]}
            out.append(ReceivedMessage(body, int(m.dequeue_count or 1), m.id, m.pop_receipt))
        return out

    async def delete(self, message: ReceivedMessage) -> None:
        await self._client.delete_message(message.id, message.pop_receipt)

    async def retry_later(self, message: ReceivedMessage, seconds: int) -> None:
        """Makes a message received earlier visible again in `seconds` (a failed attempt's
        retry delay, as the Functions host applies host.json's `visibilityTimeout`)."""
        await self._client.update_message(message.id, message.pop_receipt, visibility_timeout=seconds)

    async def length(self) -> int:
        await self.ensure()
        props = await self._client.get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def close(self) -> None:
        await self._client.close()
