"""The references page labels each entry as the text cites it ("Caruana, 1997"),
instead of pybtex's alpha labels ("[Car97]"), so one citation style runs through the
book: `bibtex_reference_style: author_year` in the text, this style in the list."""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

NAME = "author_year"  # the `bibtex_default_style` that _config.yml names


def _authors(entry) -> str:
    """"Caruana", "Ma and Zhao" or "Ma et al.": the first authors' last names."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    if not people:
        return entry.fields.get("title", "Anonymous")
    last = [" ".join(p.last_names) for p in people]
    if len(last) == 1:
        return last[0]
    return f"{last[0]} and {last[1]}" if len(last) == 2 else f"{last[0]} et al."


class AuthorYearLabels(BaseLabelStyle):
    """Labels "Author, year"; a letter tells apart one author's papers of one year."""

    def format_labels(self, sorted_entries):
        labels = [
            f"{_authors(e)}, {e.fields.get('year', 'n.d.')}" for e in sorted_entries
        ]
        seen: dict[str, int] = {}
        for label in labels:
            if labels.count(label) == 1:
                yield label
            else:  # the k-th of several: "Ma et al., 2018a"
                seen[label] = seen.get(label, 0) + 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt formatting, sorted by author and year, with author-year labels."""

    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.formatting", NAME, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
