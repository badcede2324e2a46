import pytest
import torch

import sbmm


def test_pooling_equals_a_hand_computation():
    layer = sbmm.InputLayer(
        [sbmm.MultiCategorical("tags", vocab_size=5, dim=3, pooling="mean")]
    )
    table = layer.embeddings["tags"].weight  # (vocab + 1, 3)
    tags = torch.tensor([[0, 2, -1], [4, -1, -1], [1, 1, 3]])
    out = layer({"tags": tags})
    expected = torch.stack(
        [(table[0] + table[2]) / 2, table[4], (2 * table[1] + table[3]) / 3]
    )
    assert torch.allclose(out, expected)
    summed = sbmm.InputLayer(
        [sbmm.MultiCategorical("tags", vocab_size=5, dim=3, pooling="sum")]
    )
    t = summed.embeddings["tags"].weight
    assert torch.allclose(summed({"tags": tags})[0], t[0] + t[2])


def test_features_are_concatenated_in_declaration_order():
    layer = sbmm.InputLayer(
        [
            sbmm.Dense("d", 2),
            sbmm.Categorical("item", vocab_size=4, dim=3),
            sbmm.Dense("e"),
        ]
    )
    batch = {
        "d": torch.ones(5, 2),
        "item": torch.tensor([0, 1, 2, 3, 0], dtype=torch.int32),
        "e": torch.zeros(5),
    }
    out = layer(batch)
    assert out.shape == (5, 6) and layer.dim == 6
    assert torch.equal(out[:, :2], torch.ones(5, 2)) and torch.equal(
        out[:, 5], torch.zeros(5)
    )
    assert torch.equal(out[:, 2:5], layer.embeddings["item"].weight[[0, 1, 2, 3, 0]])


@pytest.mark.parametrize(
    "feature, value, error, message",
    [
        (
            sbmm.Categorical("item", 4),
            torch.tensor([0, 4]),
            ValueError,
            "'item'.*vocabulary",
        ),
        (
            sbmm.Categorical("item", 4),
            torch.tensor([-1, 0]),
            ValueError,
            "'item'.*vocabulary",
        ),
        (
            sbmm.MultiCategorical("tags", 4),
            torch.tensor([[0, 7]]),
            ValueError,
            "'tags'.*vocabulary",
        ),
        (
            sbmm.Categorical("item", 4),
            torch.tensor([0.0, 1.0]),
            TypeError,
            "'item'.*integer",
        ),
        (sbmm.Dense("age", 2), torch.zeros(3), ValueError, "'age'.*shape"),
        (
            sbmm.Dense("age"),
            torch.zeros(3, dtype=torch.long),
            TypeError,
            "'age'.*floating",
        ),
        (
            sbmm.MultiCategorical("tags", 4),
            torch.tensor([0, 1]),
            ValueError,
            "'tags'.*shape",
        ),
    ],
)
def test_bad_inputs_raise_naming_the_feature(feature, value, error, message):
    with pytest.raises(error, match=message):
        sbmm.InputLayer([feature])({feature.name: value})


def test_missing_feature_and_bad_declarations_raise():
    with pytest.raises(ValueError, match="'x' is missing"):
        sbmm.InputLayer([sbmm.Dense("x")])({"y": torch.zeros(2)})
    with pytest.raises(ValueError, match="'c'.*vocab_size"):
        sbmm.Categorical("c", 0) and sbmm.InputLayer([sbmm.Categorical("c", 0)])
    with pytest.raises(ValueError, match="unique"):
        sbmm.InputLayer([sbmm.Dense("x"), sbmm.Dense("x")])
    with pytest.raises(ValueError, match="pooling.*'max'"):
        sbmm.InputLayer([sbmm.MultiCategorical("t", 3, pooling="max")])


def test_check_ids_names_the_feature_and_accepts_padding():
    layer = sbmm.InputLayer(
        [sbmm.Categorical("item", 4), sbmm.MultiCategorical("tags", 3)]
    )
    layer.check_data(
        {"item": torch.tensor([0, 3]), "tags": torch.tensor([[2, -1], [-1, -1]])}
    )
    with pytest.raises(ValueError, match="'tags'.*ids in \\[-2, 1\\]"):
        layer.check_data(
            {"item": torch.tensor([0, 3]), "tags": torch.tensor([[1, -2]])}
        )
    with pytest.raises(ValueError, match="'item'.*\\[0, 4\\)"):
        layer.check_data({"item": torch.tensor([5]), "tags": torch.tensor([[0]])})


def test_forward_off_the_cpu_does_not_read_ids_back():
    # On an accelerator the id check would stop the host every step; the forward pass
    # leaves it to fit/predict. A "meta" tensor has no values, so reading one back would
    # raise.
    layer = sbmm.InputLayer(
        [sbmm.Categorical("item", 4, dim=2), sbmm.MultiCategorical("tags", 3, dim=2)]
    ).to("meta")
    out = layer(
        {
            "item": torch.zeros(5, dtype=torch.long, device="meta"),
            "tags": torch.zeros(5, 2, dtype=torch.long, device="meta"),
        }
    )
    assert out.shape == (5, 4) and out.device.type == "meta"


def test_compiled_forward_has_no_graph_break_from_the_id_check():
    # Under torch.compile the read-back of ids would split the graph; fit checks the
    # data set instead.
    layer = sbmm.InputLayer(
        [sbmm.Categorical("item", 4, dim=2), sbmm.MultiCategorical("tags", 3, dim=2)]
    )
    features = {"item": torch.tensor([0, 3]), "tags": torch.tensor([[2, -1], [0, 1]])}
    # fullgraph: a graph break raises
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    assert torch.equal(compiled(features), layer(features))
