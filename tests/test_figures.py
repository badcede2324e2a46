"""The book's figure style (sbmm/book/figures.py): legible on a phone at the widest
figure it allows, an alt text made from what a figure says, and the PNG that records
both."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from sbmm.book import figures  # noqa: E402


@pytest.fixture(autouse=True)
def book_style():
    with matplotlib.rc_context():
        figures.use_book_style()
        yield
    plt.close("all")


def two_panels(width=figures.COLUMN_INCHES):
    fig, axes = plt.subplots(1, 2, figsize=(width, 3.6), sharey=True)
    for ax, title in zip(axes, ("like", "play time")):
        ax.plot([0, 1], [0.5, 0.7], label="shared-bottom")
        ax.plot([0, 1], [0.6, 0.5], label=r"MMoE, $\lambda_1$ = 0.5")
        ax.set(title=title, xlabel=r"task correlation $\rho$", ylabel="AUC")
    axes[0].legend()
    axes[1].legend().set_visible(False)
    fig.suptitle("MMoE gains where the tasks disagree")
    return fig


def test_every_size_in_the_style_keeps_9_px_on_a_phone_at_the_widest_figure():
    sizes = [
        v for k, v in figures.STYLE.items() if "size" in k and k != "figure.figsize"
    ]
    assert min(sizes) == figures.SMALLEST_POINTS
    px = figures.phone_text_px(figures.SMALLEST_POINTS, figures.COLUMN_INCHES)
    assert px >= figures.MIN_TEXT_PX
    # a figure one inch wider than the column would not
    wider = figures.phone_text_px(figures.SMALLEST_POINTS, figures.COLUMN_INCHES + 1)
    assert wider < figures.MIN_TEXT_PX
    # a narrow figure shows at its own size: points at DPI
    assert figures.phone_text_px(9, 2.0) == pytest.approx(9 / 72 * figures.DPI)


def test_smallest_text_names_the_legend_and_skips_a_hidden_one():
    fig = two_panels()
    points, what = figures.smallest_text(fig)
    assert points == figures.SMALLEST_POINTS
    assert what == "legend 'shared-bottom'"
    fig.axes[0].get_legend().set_visible(False)
    points, what = figures.smallest_text(fig)
    assert (points, what.split(" '")[0]) == (11.5, "tick label")


def test_a_smaller_fontsize_in_a_chapter_is_what_it_records():
    fig = two_panels()
    fig.axes[0].annotate("note", (0.5, 0.6), fontsize=7)
    assert figures.smallest_text(fig) == (7, "text 'note'")


def test_alt_text_says_title_panels_axes_and_legend_in_words():
    alt = figures.alt_text(two_panels())
    assert alt == (
        "MMoE gains where the tasks disagree. "
        "Panel 1, like: AUC against task correlation ρ; "
        "legend: shared-bottom, MMoE, λ1 = 0.5. "
        "Panel 2, play time: AUC against task correlation ρ."
    )


def test_alt_text_keeps_underscores_outside_math():
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ax.set(xlabel="play_time (s)", title=r"$\Delta$ log loss $\times 10^3$")
    assert figures.alt_text(fig) == ("Δ log loss × 10^3: values against play_time (s).")


def test_book_png_is_a_retina_png_that_records_its_alt_text_and_smallest_text():
    fig = two_panels()
    data, metadata = figures.book_png(fig)
    png = base64.b64decode(data)
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
    # shown at half its pixels: the figure's own size at DPI, crisp on a 2x screen
    assert (metadata["width"], metadata["height"]) == (width // 2, height // 2)
    record = figures.png_record(io.BytesIO(png))
    assert record["Title"] == "MMoE gains where the tasks disagree"
    assert record["Description"] == figures.alt_text(fig)
    # 11 pt at twice the figure's dpi, in the PNG's pixels
    expected = figures.SMALLEST_POINTS * 2 * figures.DPI / 72
    assert float(record[figures.SMALLEST_TEXT_KEY]) == pytest.approx(expected, abs=0.1)
    # what a phone's 388 px column makes of it: at least 9 px
    phone = float(record[figures.SMALLEST_TEXT_KEY]) * figures.PHONE_COLUMN_PX / width
    assert phone >= figures.MIN_TEXT_PX


def test_an_empty_figure_gives_no_png():
    assert figures.book_png(plt.figure()) is None
