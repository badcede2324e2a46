import pytest
import torch

import sbmm


def make(n=10):
    return sbmm.Batch(
        {"x": torch.arange(n).float()},
        {"y": torch.arange(n) % 2},
        {"p": torch.full((n,), 0.5)},
    )


def test_rows_are_sliced_together():
    b = make()
    part = b[torch.tensor([3, 1])]
    assert part.features["x"].tolist() == [3.0, 1.0] and part.labels["y"].tolist() == [
        1,
        1,
    ]
    assert len(b[2:5]) == 3 and len(b[b.features["x"] > 6]) == 3


def test_split_is_a_seeded_partition():
    parts = make(100).split((0.8, 0.1, 0.1), seed=1)
    assert [len(p) for p in parts] == [80, 10, 10]
    seen = torch.cat([p.features["x"] for p in parts]).sort().values
    assert torch.equal(seen, torch.arange(100).float())
    again = make(100).split((0.8, 0.1, 0.1), seed=1)
    assert torch.equal(parts[1].features["x"], again[1].features["x"])
    other = make(100).split((0.8, 0.1, 0.1), seed=2)
    assert not torch.equal(parts[1].features["x"], other[1].features["x"])


def test_bad_batches_raise_naming_the_column():
    with pytest.raises(ValueError, match="'y'"):
        sbmm.Batch({"x": torch.zeros(4)}, {"y": torch.zeros(5)})
    with pytest.raises(TypeError, match="'x'"):
        sbmm.Batch({"x": [1, 2]}, {})
    with pytest.raises(ValueError, match="sum to 1"):
        make().split((0.5, 0.2))


def test_to_returns_the_same_object_on_the_same_device():
    b = make()
    assert b.to("cpu") is b
