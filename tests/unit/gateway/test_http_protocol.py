"""Coalesced response writes: one socket write per loop turn, in order, flushed on close."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gateway.http_protocol import CoalescedWrites


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8080) if name == "sockname" else None


def _wrapped() -> tuple[CoalescedWrites, RecordingTransport]:
    transport = RecordingTransport()
    loop = asyncio.get_running_loop()
    return CoalescedWrites(cast(asyncio.Transport, transport), loop), transport


def test_writes_of_one_turn_go_out_as_one_in_order() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], int]:
        writes, transport = _wrapped()
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        writes.write(b"")  # nothing to send: no write at all
        writes.write(memoryview(b'{"ok":true}'))
        before = list(transport.writes)
        pending = writes.get_write_buffer_size()
        await asyncio.sleep(0)
        return before, transport.writes, pending

    before, after, pending = asyncio.run(scenario())

    assert before == []
    assert pending == len(b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}')
    assert after == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']


def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    async def scenario() -> tuple[RecordingTransport, RecordingTransport]:
        closing, closed = _wrapped()
        closing.write(b"last answer")
        closing.close()
        aborting, aborted = _wrapped()
        aborting.write(b"never sent")
        aborting.abort()
        await asyncio.sleep(0)
        return closed, aborted

    closed, aborted = asyncio.run(scenario())

    assert (closed.writes, closed.closed) == ([b"last answer"], True)
    assert (aborted.writes, aborted.aborted) == ([], True)


def test_everything_else_is_the_transports() -> None:
    async def scenario() -> Any:
        writes, _ = _wrapped()
        return writes.get_extra_info("sockname")

    assert asyncio.run(scenario()) == ("127.0.0.1", 8080)
