"""Write each script tag once per page.

Under Jupyter Book 1, sphinx-thebe registers its inline configuration (and
sphinx-togglebutton its selector) twice, so that every page declares
``const THEBE_JS_URL`` twice and the browser logs a SyntaxError. This drops a
script that repeats an earlier one's source and attributes.
"""

from sphinx.application import Sphinx


def drop_repeated_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree
) -> None:
    """Keep the first of the page's scripts with the same source and attributes."""
    seen = set()
    unique = []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        # An inline script's filename is None or "", depending on how it was added.
        filename = getattr(script, "filename", script) or ""
        key = (filename, tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    """Run after the other extensions have added their page scripts."""
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
