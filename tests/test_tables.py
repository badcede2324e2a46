import numpy as np
import pytest

import sbmm


def test_a_table_lines_up_its_rows_and_formats_each_kind_of_value():
    t = sbmm.table(
        {
            "shared": {"stay": 0.3249, "click": np.float32(0.26), "clicks": 4127},
            "like only": {"stay": -0.06, "note": "early"},
        },
        title="share of the gap",
        decimals=2,
        corner="model",
    )
    assert t.header == ("model", "stay", "click", "clicks", "note")
    assert t.rows == (
        ("shared", "0.32", "0.26", "4,127", ""),
        ("like only", "-0.06", "", "", "early"),
    )
    assert str(t).splitlines() == [
        "share of the gap",
        "model        stay    click    clicks    note",
        "---------  ------  -------  --------  ------",
        "shared       0.32     0.26     4,127",
        "like only   -0.06                      early",
    ]  # labels left, values right, under their column


def test_a_notebook_shows_it_as_an_html_table_with_its_title():
    html = sbmm.table({"a<b": {"x": 1.0}}, title="R & D")._repr_html_()
    assert html.startswith("<table>\n<caption>R &amp; D</caption>")
    assert "a&lt;b" in html and html.count("<tr>") == 2


@pytest.mark.parametrize(
    "rows, options, message",
    [
        ({}, {}, "at least one row"),
        ({"a": [1, 2]}, {}, "row 'a' must map columns to values"),
        ({"a": {"x": 1}}, {"decimals": -1}, "decimals must be an int >= 0"),
    ],
)
def test_bad_tables_are_refused(rows, options, message):
    with pytest.raises(ValueError, match=message):
        sbmm.table(rows, **options)
