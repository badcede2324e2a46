"""The numbers in a chapter's prose, written into its Markdown so that every reader
sees them: in the rendered book, and in JupyterLab or any notebook viewer, which do
not run MyST's `{glue}` roles.

A chapter records each number in a code cell with myst-nb's `glue(name, value,
display=False)`; the record is a stored output, which nbval checks against a fresh
run. The Markdown quotes it between two HTML comments, which every renderer hides:

    The shared model closes <!--glue:share-->0.73<!--/--> of the gap.

`fill` rewrites each quoted value from the notebook's records, after the chapter is
re-executed (`make notebooks` does it); `stale` lists the quotes that differ from
their records, for the book's tests. A value is written as myst-nb's `{glue:text}`
role would render it. A quote never starts a line: Markdown reads a line that starts
with "<!--" as raw HTML, with no math, emphasis or roles, so `fill` moves the last word
of the line before onto it. Nor does it sit in math or code, where it would show as
text: `stale` reports both.

    python -m sbmm.book.prose book/*.ipynb           # fill every chapter's prose
    python -m sbmm.book.prose --check book/*.ipynb   # exit 1 if any quote is stale
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

__all__ = ["QUOTE", "fill", "records", "stale"]

QUOTE = re.compile(r"<!--glue:(?P<name>[^>]+?)-->(?P<value>.*?)<!--/-->", re.S)
RECORD = "application/papermill.record/text/plain"  # the mime type glue stores
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>$|])")
NUMPY_SCALAR = re.compile(r"np\.\w+\(")  # "np.float64(4.5)": NumPy's repr
HTML_LINE = re.compile(r" {0,3}<!--")  # a line Markdown reads as a raw HTML block
# Where a quote would show as text: raw HTML blocks, math (TeX), code (but not a MyST
# directive's body, which is Markdown).
UNREAD = {
    "html_block",
    "math_inline",
    "math_block",
    "code_inline",
    "code_block",
    "fence",
}
MARKDOWN = MarkdownIt("commonmark").use(dollarmath_plugin)


def records(notebook: dict) -> dict[str, str]:
    """{name: value as prose shows it} for every `glue` record in the code cells'
    stored outputs of `notebook` (a notebook's JSON)."""
    found = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None and RECORD in output.get("data", {}):
                found[name] = _as_text(_joined(output["data"][RECORD]))
    return found


def stale(notebook: dict) -> list[str]:
    """One line per quote in `notebook`'s Markdown that names no record or differs
    from its record; [] when the prose matches the stored outputs."""
    known = records(notebook)
    problems = []
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for token in _tokens(_joined(cell["source"])):
            directive = token.type == "fence" and token.info.startswith("{")
            if token.type in UNREAD and not directive and QUOTE.search(token.content):
                where = token.content.strip()[:40]
                problems.append(f"cell {k}: a quote in {token.type}: {where!r}")
        for quote in QUOTE.finditer(_joined(cell["source"])):
            name, value = quote["name"], quote["value"]
            if name not in known:
                problems.append(f"cell {k}: {name!r} has no glue record")
            elif NUMPY_SCALAR.match(known[name]):
                problems.append(
                    f"cell {k}: {name!r} records a NumPy scalar, {known[name]!r}: "
                    "glue float(...) or int(...)"
                )
            elif value != known[name]:
                record = known[name]
                problems.append(f"cell {k}: {name!r} quotes {value!r}, not {record!r}")
    return problems


def fill(notebook: dict) -> int:
    """Rewrite every quote in `notebook`'s Markdown from its record, in place; the
    number of quotes changed. KeyError naming a quote without a record."""
    known = records(notebook)
    changed = 0

    def quoted(match: re.Match) -> str:
        nonlocal changed
        name = match["name"]
        if name not in known:
            raise KeyError(f"the prose quotes {name!r}, which no glue call records")
        changed += match["value"] != known[name]
        return f"<!--glue:{name}-->{known[name]}<!--/-->"

    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = _no_line_starts_with_a_quote(
                QUOTE.sub(quoted, _joined(cell["source"]))
            )
            cell["source"] = text.splitlines(keepends=True)
    return changed


def _no_line_starts_with_a_quote(text: str) -> str:
    """`text` with the last word of the line before moved onto each line that starts
    with a quote (the two lines joined, if that word is the line's only one or is a
    quote itself). ValueError for a quote that starts a paragraph: rephrase it."""
    lines: list[str] = []
    for line in text.split("\n"):
        if HTML_LINE.match(line) and QUOTE.search(line):
            if not (lines and lines[-1].strip()):
                raise ValueError(f"a paragraph starts with a quote: {line[:60]!r}")
            head, _, word = lines[-1].rstrip().rpartition(" ")
            indent = line[: len(line) - len(line.lstrip())]
            if head.strip() and not word.startswith("<!--"):
                lines[-1], line = head, f"{indent}{word} {line.lstrip()}"
            else:  # one word, or a quote, before: join the lines
                line = f"{lines.pop().rstrip()} {line.lstrip()}"
        lines.append(line)
    return "\n".join(lines)


def _tokens(markdown: str):
    """Every token of `markdown`, as MyST's parser (markdown-it, with dollar math) reads
    it, inline ones included."""
    for token in MARKDOWN.parse(markdown):
        yield token
        yield from token.children or ()


def _as_text(plain: str) -> str:
    """A record's text/plain as `{glue:text}` shows it (a string without its quotes),
    with Markdown's special characters escaped, so it reads the same in the page."""
    try:
        value = ast.literal_eval(plain)
    except (SyntaxError, ValueError):
        value = plain
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


def _joined(text: str | list[str]) -> str:
    return "".join(text) if isinstance(text, list) else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not write")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if args.check:
            for problem in stale(notebook):
                print(f"{path}: {problem}")
                failed = True
            continue
        changed = fill(notebook)
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
        print(f"{path}: {changed} quote(s) rewritten")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
