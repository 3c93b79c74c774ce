"""Sphinx extension: list each script of a page once.

Sphinx 7.4 lists an inline script added after the builder starts twice (once
with the file name ``None``, once with ``''``; fixed in Sphinx 8, which Jupyter
Book 1 does not support). sphinx-thebe's ``const THEBE_JS_URL = ...`` is such a
script, and its second copy raises "Identifier 'THEBE_JS_URL' has already been
declared" on every page.
"""


def _key(script):
    attrs = tuple(sorted((k, str(v)) for k, v in script.attributes.items()))
    return (script.filename or "", attrs)


def dedupe_scripts(app, pagename, templatename, context, doctree):
    seen = set()
    unique = []
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
