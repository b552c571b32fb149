"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


@pytest.fixture
def kill_after_saves():
    """``arm(monkeypatch, k)``: make :func:`memlab.validation.runtime.atomic_save` raise ``KeyboardInterrupt`` right
    after its ``k``-th checkpoint was written (a run killed at that point)."""
    from memlab.validation import runtime

    def arm(monkeypatch, k):
        orig, calls = runtime.atomic_save, {"n": 0}

        def save_then_stop(obj, path):
            orig(obj, path)
            calls["n"] += 1
            if calls["n"] == k:
                raise KeyboardInterrupt("simulated kill")

        monkeypatch.setattr(runtime, "atomic_save", save_then_stop)

    return arm
