"""The received-message queue and its water marks (I/O-free): the read side's back-pressure
rule that both transports follow."""

from __future__ import annotations

import pytest

from worker_process._inbox import READ_HIGH_WATER, READ_LOW_WATER, MessageQueue


def test_messages_come_out_in_order_and_are_counted() -> None:
    queue = MessageQueue()
    queue.put([b"a", b"", b"bcd"])
    queue.put([b"ef"])
    assert len(queue) == 4
    assert queue.bytes == 6
    assert [queue.take() for _ in range(4)] == [b"a", b"", b"bcd", b"ef"]
    assert queue.bytes == 0
    assert not queue
    with pytest.raises(IndexError):
        queue.take()


def test_pause_is_due_once_above_the_high_water_mark() -> None:
    queue = MessageQueue(high=10, low=4)
    queue.put([b"x" * 10])
    assert not queue.pause_due()  # at the mark, not above it
    queue.put([b"y"])
    assert queue.pause_due()
    assert queue.paused
    queue.put([b"z" * 100])
    assert not queue.pause_due()  # already paused: said once


def test_resume_is_due_once_at_the_low_water_mark() -> None:
    queue = MessageQueue(high=10, low=4)
    queue.put([b"a" * 5, b"b" * 3, b"c" * 3])
    assert queue.pause_due()
    queue.take()  # 6 bytes left: above low
    assert not queue.resume_due()
    queue.take()  # 3 left
    assert queue.resume_due()
    assert not queue.paused
    assert not queue.resume_due()


def test_resume_is_never_due_when_not_paused() -> None:
    queue = MessageQueue(high=10, low=4)
    queue.put([b"a"])
    queue.take()
    assert not queue.resume_due()


def test_default_marks_leave_room_between_them() -> None:
    assert 0 < READ_LOW_WATER < READ_HIGH_WATER
    queue = MessageQueue()
    assert (queue.high, queue.low) == (READ_HIGH_WATER, READ_LOW_WATER)


def test_a_queue_without_marks_never_pauses_and_keeps_no_count() -> None:
    queue = MessageQueue(high=None)
    queue.put([b"x" * (READ_HIGH_WATER + 1), b"y"])
    assert not queue.pause_due()
    assert queue.bytes == 0
    assert queue.messages.popleft() == b"x" * (READ_HIGH_WATER + 1)  # taken directly
    assert queue.take() == b"y"
    assert not queue.resume_due()
