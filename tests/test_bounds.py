"""What a submission returns cannot make results or reports large."""

from __future__ import annotations

import json

from grader.grading.bounds import MAX_ITEMS, MAX_TEXT, bounded


def test_a_huge_layer_table_is_cut_and_the_cut_is_named() -> None:
    rows = [{"kind": "Conv2d", "name": f"layer{i}", "params": i} for i in range(15_000)]
    cut: list[str] = []
    kept = bounded({"layer_tables": {"ResNet": {"student": rows, "reference": rows[:10]}}}, cut, "artifacts")
    assert len(kept["layer_tables"]["ResNet"]["student"]) == MAX_ITEMS
    assert kept["layer_tables"]["ResNet"]["reference"] == rows[:10]
    assert cut == ["artifacts.layer_tables.ResNet.student (15,000 items)"]
    assert len(json.dumps(kept)) < 40_000


def test_long_text_many_keys_and_deep_nesting_are_bounded() -> None:
    deep: dict = {}
    node = deep
    for _ in range(50):
        node["next"] = {}
        node = node["next"]
    cut: list[str] = []
    kept = bounded({"text": "x" * 1_000_000, "keys": {str(i): i for i in range(10_000)}, "deep": deep}, cut)
    assert len(kept["text"]) == MAX_TEXT and len(kept["keys"]) == MAX_ITEMS
    assert len(cut) == 3 and len(json.dumps(kept)) < 20_000


def test_small_values_are_kept_as_they_are() -> None:
    value = {"loss_curves": {"VGG": {"student": [1.0, 0.5], "reference": [1.0, 0.4]}}, "n": 3, "s": "ok"}
    cut: list[str] = []
    assert bounded(value, cut) == value and cut == []
