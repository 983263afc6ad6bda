"""The in-memory store of used assertion ids (jti)."""

from __future__ import annotations

import pytest

from hubgate_authenticator import JtiStore, JtiStoreFull


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_jti_is_accepted_once():
    store = JtiStore(clock=Clock())
    assert store.use("a" * 22, 1030) is True
    assert store.use("a" * 22, 1030) is False
    assert store.use("b" * 22, 1030) is True
    assert len(store) == 2


def test_jti_store_forgets_expired_entries():
    clock = Clock(1000)
    store = JtiStore(max_entries=3, clock=clock)
    store.use("early", 1010)
    store.use("late", 1060)
    store.use("middle", 1030)
    clock.now = 1010  # a deadline is inclusive: still remembered at that instant
    store.purge()
    assert len(store) == 3 and "early" in store
    clock.now = 1031
    store.purge()
    assert len(store) == 1
    assert "early" not in store and "middle" not in store and "late" in store
    assert store.use("late", 1060) is False  # unexpired: still refused
    clock.now = 1061
    assert "late" not in store
    store.purge()
    assert len(store) == 0 and store._heap == []


def test_full_store_evicts_expired_entries_first():
    clock = Clock(1000)
    store = JtiStore(max_entries=2, clock=clock)
    store.use("one", 1010)
    store.use("two", 1050)
    clock.now = 1011
    assert store.use("three", 1070) is True  # "one" expired and made room
    assert "two" in store and "three" in store and len(store) == 2


def test_full_store_refuses_rather_than_forgets():
    clock = Clock(1000)
    store = JtiStore(max_entries=2, clock=clock)
    store.use("one", 1010)
    store.use("two", 1050)
    with pytest.raises(JtiStoreFull):
        store.use("three", 1070)
    assert "three" not in store
    assert store.use("one", 1010) is False and store.use("two", 1050) is False


def test_store_size_stays_bounded_under_a_steady_stream():
    clock = Clock(0)
    store = JtiStore(max_entries=100, clock=clock)
    for i in range(10_000):  # one login per second, each valid for 65 s
        clock.now = i
        assert store.use(f"jti-{i:012d}", i + 65) is True
    assert len(store) <= 66
    assert len(store._heap) <= 66


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError):
        JtiStore(max_entries=0)
