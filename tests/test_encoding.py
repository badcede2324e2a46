"""From tables to a Batch: `Schema`, `TableEncoder`, `split_frame`."""

import numpy as np
import pandas as pd
import pytest
import torch

import sbmm
from sbmm.data.encoding import OOV, Schema, TableEncoder, split_frame

SCHEMA = Schema(
    categorical=("city",), dense=("age",), multi_valued=("tags",), labels=("click",)
)


def frame(**overrides) -> pd.DataFrame:
    columns = {
        "city": ["paris", "rome", "paris", "oslo", "paris"],
        "age": [20.0, 30.0, 40.0, 50.0, 60.0],
        "tags": [["a", "b"], [], ["b"], ["a", "a", "c"], ["c"]],
        "click": [0, 1, 0, 1, 1],
    }
    return pd.DataFrame({**columns, **overrides})


def test_vocabulary_is_fitted_on_train_most_frequent_first_with_an_oov_id():
    encoder = TableEncoder(SCHEMA).fit(frame())
    assert list(encoder.vocabularies["city"]) == ["paris", "rome", "oslo"]
    test = frame(city=["rome", "lima", "paris", "oslo", "tokyo"])
    ids = encoder.transform(test).features["city"]
    assert ids.tolist() == [2, OOV, 1, 3, OOV]  # unseen cities share id 0
    assert ids.dtype == torch.int64


def test_min_count_sends_rare_values_to_the_oov_id():
    encoder = TableEncoder(SCHEMA, min_count=2).fit(frame())
    assert list(encoder.vocabularies["city"]) == ["paris"]
    assert encoder.transform(frame()).features["city"].tolist() == [1, 0, 1, 0, 1]


def test_dense_columns_are_scaled_with_the_training_statistics_only():
    encoder = TableEncoder(SCHEMA).fit(frame())
    train_age = np.array([20.0, 30.0, 40.0, 50.0, 60.0])
    test = frame(age=[40.0, 40.0, 40.0, 40.0, 100.0])
    x = encoder.transform(test).features["age"]
    # the population std (ddof 0), as scikit-learn scales
    expected = (np.array(test["age"]) - train_age.mean()) / train_age.std()
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)
    minmax = TableEncoder(SCHEMA, scaling="minmax").fit(frame())
    assert minmax.transform(test).features["age"].tolist() == pytest.approx(
        [0.5, 0.5, 0.5, 0.5, 2.0]
    )


def test_multi_valued_columns_are_padded_with_minus_one():
    encoder = TableEncoder(SCHEMA).fit(frame())
    test = frame(tags=[["c", "zzz"], ["a"], [], ["b", "b", "a", "c"], ["a"]])
    ids = encoder.transform(test).features["tags"]
    a, b, c = (int(encoder.vocabularies["tags"].get_loc(v)) + 1 for v in "abc")
    assert ids.tolist() == [
        [c, OOV, -1, -1],
        [a, -1, -1, -1],
        [-1, -1, -1, -1],
        [b, b, a, c],
        [a, -1, -1, -1],
    ]


def test_features_declare_the_fitted_vocabularies_and_a_model_trains_on_them():
    encoder = TableEncoder(SCHEMA, dim={"city": 3}).fit(frame())
    city, age, tags = encoder.features
    assert (city.name, city.vocab_size, city.dim) == ("city", 4, 3)  # 3 cities + OOV
    assert age == sbmm.Dense("age")
    assert (tags.vocab_size, tags.dim) == (4, 8)
    towers = [sbmm.Tower("t", [sbmm.Objective("click")])]
    model = sbmm.SharedBottom(encoder.features, towers, bottom=(4,))
    test = frame(city=["lima"] * 5, tags=[["new"]] * 5)
    history = sbmm.fit(
        model, encoder.transform(frame()), encoder.transform(test), epochs=2,
        progress=False,
    )  # fmt: skip
    assert np.isfinite(history.valid_loss["total"]).all()


def test_numpy_columns_work_like_a_frame():
    columns = {k: np.asarray(v, dtype=object) for k, v in frame().items()}
    columns["age"] = np.asarray(columns["age"], dtype=float)
    batch = TableEncoder(SCHEMA).fit_transform(columns)
    reference = TableEncoder(SCHEMA).fit_transform(frame())
    for name in SCHEMA.features:
        assert torch.equal(batch.features[name], reference.features[name])
    assert batch.labels["click"].tolist() == [0.0, 1.0, 0.0, 1.0, 1.0]


def test_labels_are_skipped_for_rows_to_predict_on():
    encoder = TableEncoder(SCHEMA).fit(frame())
    batch = encoder.transform(frame().drop(columns="click"), labels=False)
    assert batch.labels == {}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"city": ["paris", None, "rome", "oslo", "paris"]},
            "categorical column 'city'",
        ),
        ({"age": [1.0, "ten", 3.0, 4.0, 5.0]}, "dense column 'age'.*'ten' in row 1"),
        ({"age": [1.0, np.nan, 3.0, 4.0, 5.0]}, "dense column 'age'"),
        ({"click": [0, 1, np.inf, 1, 0]}, "label column 'click'"),
        ({"click": [0, 1, "yes", 1, 0]}, "label column 'click'.*'yes' in row 2"),
        ({"tags": [["a"], ["b", None], [], [], []]}, "multi-valued column 'tags'"),
    ],
)
def test_bad_columns_are_refused_with_their_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        TableEncoder(SCHEMA).fit_transform(frame(**overrides))


def test_a_string_where_a_list_belongs_and_a_missing_column_are_refused():
    with pytest.raises(TypeError, match="multi-valued column 'tags'.*row 0"):
        TableEncoder(SCHEMA).fit(frame(tags=["a,b", [], [], [], []]))
    with pytest.raises(ValueError, match="column 'age' is missing"):
        TableEncoder(SCHEMA).fit(frame().drop(columns="age"))


def test_an_unfitted_encoder_and_bad_schemas_are_refused():
    with pytest.raises(RuntimeError, match="not fitted"):
        TableEncoder(SCHEMA).transform(frame())
    with pytest.raises(ValueError, match="'age' is both categorical and dense"):
        Schema(categorical=("age",), dense=("age",))
    with pytest.raises(ValueError, match="'a.b': a name must not contain"):
        Schema(categorical=("a.b",))
    with pytest.raises(TypeError, match="sequence of column names"):
        Schema(categorical="city")
    with pytest.raises(ValueError, match="not categorical or multi-valued"):
        TableEncoder(SCHEMA, dim={"age": 4})


def test_split_frame_is_reproducible_and_covers_every_row_once():
    table = pd.DataFrame({"i": range(100)})
    parts = split_frame(table, (0.6, 0.2, 0.2), seed=3)
    assert [len(p) for p in parts] == [60, 20, 20]
    assert sorted(pd.concat(parts)["i"]) == list(range(100))
    again = split_frame(table, (0.6, 0.2, 0.2), seed=3)
    assert all(p.equals(q) for p, q in zip(parts, again))
    with pytest.raises(ValueError, match="sum to 1"):
        split_frame(table, (0.5, 0.2))


def test_array_cells_and_list_cells_encode_alike():
    lists = frame(tags=[[3, 1], [], [1], [2, 2, 7], [7]])
    arrays = frame(tags=[np.array(c, dtype=np.int64) for c in lists["tags"]])
    encoder = TableEncoder(SCHEMA).fit(arrays)
    assert torch.equal(
        encoder.transform(arrays).features["tags"],
        encoder.transform(lists).features["tags"],
    )
    # by count, ties in the order of their first row
    assert list(encoder.vocabularies["tags"]) == [1, 2, 7, 3]


def test_a_missing_label_stays_nan_for_fit_to_judge_where_it_is_read():
    batch = TableEncoder(SCHEMA).fit_transform(frame(click=[0, 1, None, 1, np.nan]))
    assert batch.labels["click"][[0, 1, 3]].tolist() == [0.0, 1.0, 1.0]
    assert torch.isnan(batch.labels["click"][[2, 4]]).all()


# Nothing is sent silently out of vocabulary, emptied or lost to float32.


def test_ids_of_another_kind_than_fitted_are_refused_naming_the_column():
    encoder = TableEncoder(SCHEMA).fit(frame(city=[1, 2, 1, 3, 1]))
    text = "'city' was fitted on number values but holds text values .*'2' in row 1"
    with pytest.raises(ValueError, match=f"categorical column {text}"):
        encoder.transform(frame(city=[1, "2", 1, 3, 1]))
    assert encoder.transform(frame(city=[1.0, 2.0, 1.0, 3.0, 4.0])).features[
        "city"
    ].tolist() == [1, 2, 1, 3, OOV]  # the same numbers, read as floats: accepted
    numbers = TableEncoder(SCHEMA).fit(frame(tags=[[1], [], [2], [1, 3], [3]]))
    with pytest.raises(ValueError, match="multi-valued column 'tags'.*in row 3"):
        numbers.transform(frame(tags=[[1], [], [2], ["1", 3], [3]]))


def test_a_min_count_that_empties_a_vocabulary_is_refused():
    with pytest.raises(ValueError, match="column 'city': min_count=4 .* appears 3"):
        TableEncoder(SCHEMA, min_count=4).fit(frame())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_count": True}, "min_count must be an integer >= 1, got True"),
        ({"dim": 0}, "dim must be an integer >= 1, got 0"),
        ({"dim": {"city": "8"}}, "dim of 'city' must be an integer >= 1, got '8'"),
        ({"pooling": "max"}, "pooling must be 'mean' or 'sum', got 'max'"),
    ],
)
def test_bad_encoder_options_are_refused_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        TableEncoder(SCHEMA, **options)


@pytest.mark.parametrize(
    "scaling, ages, message",
    [
        ("none", [1e300, 30.0, 40.0, 50.0, 60.0], "1e\\+300 in row 0 becomes inf"),
        ("none", [20.0, 1e-50, 40.0, 50.0, 60.0], "1e-50 in row 1 becomes 0.0"),
        ("standard", [1e30, 30.0, 40.0, 50.0, 60.0], "5 distinct values .* become 2"),
        ("standard", [1e300, -1e300, 0.0, 1.0, 2.0], "statistics overflow"),
    ],
)
def test_dense_values_lost_in_float32_are_refused_naming_the_column(
    scaling, ages, message
):
    with pytest.raises(ValueError, match=f"dense column 'age'.*{message}"):
        TableEncoder(SCHEMA, scaling=scaling).fit(frame(age=ages))


def test_a_value_lost_in_float32_at_transform_is_refused_too():
    encoder = TableEncoder(SCHEMA).fit(frame())
    with pytest.raises(ValueError, match="dense column 'age': 1e\\+300 in row 2"):
        encoder.transform(frame(age=[20.0, 30.0, 1e300, 50.0, 60.0]))


def test_split_frame_and_dict_tables_refuse_what_they_cannot_cut():
    with pytest.raises(TypeError, match="split_frame takes a DataFrame, got dict"):
        split_frame({"a": [1, 2]})
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got 1.5"):
        split_frame(frame(), seed=1.5)
    with pytest.raises(ValueError, match="column 'city' has shape \\(5, 2\\)"):
        TableEncoder(SCHEMA).fit({**frame().to_dict("list"), "city": np.zeros((5, 2))})
