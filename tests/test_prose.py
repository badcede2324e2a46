import json

import pytest

from sbmm.book.prose import fill, main, records, stale


def glued(name: str, plain: str) -> dict:
    """A code cell output as myst-nb's `glue(name, value, display=False)` stores it."""
    return {
        "output_type": "display_data",
        "data": {"application/papermill.record/text/plain": plain},
        "metadata": {"scrapbook": {"name": name, "mime_prefix": ""}},
    }


def notebook(prose: str) -> dict:
    code = {
        "cell_type": "code",
        "source": ["glue(...)"],
        "outputs": [glued("share", "0.731"), glued("verdict", "'better'")],
    }
    text = {"cell_type": "markdown", "source": prose.splitlines(keepends=True)}
    return {"cells": [code, text]}


def test_records_are_the_values_as_the_glue_text_role_shows_them():
    assert records(notebook("")) == {"share": "0.731", "verdict": "better"}
    odd = {"cells": [{"cell_type": "code", "outputs": [glued("ab", "'a_b <c>'")]}]}
    assert records(odd) == {"ab": r"a\_b \<c\>"}  # Markdown reads them back as typed


def test_fill_rewrites_stale_quotes_and_leaves_the_prose_around_them():
    nb = notebook(
        "The model closes <!--glue:share-->0.5<!--/--> of the gap,\n"
        "and is <!--glue:verdict-->worse<!--/--> than\n"
        "that, <!--glue:share-->0.731<!--/-->.\n"
    )
    assert len(stale(nb)) == 2 and "quotes '0.5', not '0.731'" in stale(nb)[0]
    assert fill(nb) == 2 and stale(nb) == []
    assert "".join(nb["cells"][1]["source"]) == (
        "The model closes <!--glue:share-->0.731<!--/--> of the gap,\n"
        "and is <!--glue:verdict-->better<!--/--> than\n"
        "that, <!--glue:share-->0.731<!--/-->.\n"
    )


def test_a_quote_without_a_record_is_named():
    nb = notebook("a <!--glue:shares-->0.7<!--/--> typo")
    assert stale(nb) == ["cell 1: 'shares' has no glue record"]
    with pytest.raises(KeyError, match="'shares'"):
        fill(nb)


def test_the_command_line_checks_and_fills(tmp_path, capsys):
    path = tmp_path / "chapter.ipynb"
    path.write_text(json.dumps(notebook("share <!--glue:share-->0<!--/-->")))
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0 and main(["--check", str(path)]) == 0
    assert "<!--glue:share-->0.731<!--/-->" in path.read_text()


def test_a_numpy_scalar_record_is_named_for_what_it_is():
    nb = notebook("at <!--glue:rate-->np.float64(4.5)<!--/-->%")
    nb["cells"][0]["outputs"].append(glued("rate", "np.float64(4.5)"))
    assert stale(nb) == [
        "cell 1: 'rate' records a NumPy scalar, 'np.float64(4.5)': glue float(...) "
        "or int(...)"
    ]


def test_no_line_starts_with_a_quote_which_markdown_would_read_as_raw_html():
    nb = notebook(
        "The model closes\n<!--glue:share-->0<!--/--> of the $x$ gap,\n"
        "- a list item\n  <!--glue:verdict-->0<!--/--> *here*\n"
    )
    problems = stale(nb)
    assert sum("a quote in html_block" in p for p in problems) == 2
    fill(nb)
    assert "".join(nb["cells"][1]["source"]) == (
        "The model\ncloses <!--glue:share-->0.731<!--/--> of the $x$ gap,\n"
        "- a list\n  item <!--glue:verdict-->better<!--/--> *here*\n"
    )
    assert stale(nb) == []
    with pytest.raises(ValueError, match="a paragraph starts with a quote"):
        fill(notebook("\n<!--glue:share-->0<!--/--> starts it"))


def test_a_quote_after_a_quote_joins_the_lines():
    nb = notebook(
        "it is\n<!--glue:verdict-->0<!--/-->:\n<!--glue:share-->0<!--/--> here"
    )
    fill(nb)
    assert "".join(nb["cells"][1]["source"]) == (
        "it\nis <!--glue:verdict-->better<!--/-->: <!--glue:share-->0.731<!--/--> here"
    )


def test_a_quote_in_math_or_code_is_reported_but_not_in_a_directive():
    nb = notebook(
        "$$\nU = <!--glue:share-->0<!--/--> x\n$$\n\n"
        "`<!--glue:share-->0<!--/-->`\n\n"
        "```{dropdown} Hint\nabout <!--glue:share-->0<!--/--> of it\n```\n"
    )
    kinds = [p.split(": ")[1] for p in stale(nb) if "a quote in" in p]
    assert kinds == ["a quote in math_block", "a quote in code_inline"]
