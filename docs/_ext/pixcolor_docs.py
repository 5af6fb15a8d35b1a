"""Sphinx helpers for the pixcolor docs: a complete API reference, one page per object.

* **Completeness**: every name in ``pixcolor.__all__`` and in the ``__all__`` of each module
  in ``pixcolor_public_modules`` must be documented somewhere; a missing one is a warning,
  hence a failed build under ``-W``. Adding a public name without documenting it cannot
  slip through.
* **Aliases**: pixcolor re-exports objects (``pixcolor.data.PhotoFolder`` is
  ``pixcolor.PhotoFolder``). Each object is documented once; a cross-reference to another
  name of the same object (``:class:`pixcolor.training.Trainer```, or ``UNetGenerator``
  from inside ``pixcolor.colorizer``) is resolved to the documented one by identity.
* **Model card**: the bundled model's ``README.md`` is copied into ``generated/`` at build
  time and rendered as a page; until the model exists, that page says so.
* **Tables from the code**: the presets (``pixcolor.PRESETS``) and training recipes
  (``pixcolor.training.recipes.RECIPES``) are written to ``generated/*.inc`` at build time
  and included by the narrative pages, so they cannot drift from the code.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)

_MODEL_CARD_DIR = Path("generated") / "model_card"
_MODEL_CARD_PAGE = "bundled.md"
_PLACEHOLDER = """# The bundled model

This build of the documentation found no model card at
`src/pixcolor/weights/bundled/README.md`: the model that ships inside pixcolor is not in
this checkout yet. Once it is, this page shows its card (architecture, training data and
its metrics on held-out photos).
"""


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("pixcolor_public_modules", [], "env", list)
    app.connect("builder-inited", _write_model_card)
    app.connect("builder-inited", _write_tables)
    app.connect("missing-reference", _resolve_alias)
    app.connect("env-check-consistency", _check_api_complete)
    app.connect("autodoc-process-docstring", _drop_type_docstring)
    app.connect("autodoc-process-bases", _drop_object_base)
    app.connect("doctree-read", _plain_docutils_text)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


# ----------------------------------------------------------------------------- model card
def _write_model_card(app: Sphinx) -> None:
    """Copy the bundled model's card (and any images beside it) to ``generated/model_card``."""
    import pixcolor
    from pixcolor.hub import WEIGHTS_NAME
    from pixcolor.presets import BUNDLED, PRESETS

    source = Path(pixcolor.__file__).parent / str(PRESETS[BUNDLED].path)
    card = source / "README.md"
    files: dict[str, bytes] = {}
    if card.is_file():
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name != WEIGHTS_NAME and path.suffix != ".json":
                files[path.name] = path.read_bytes()
        text = files.pop(card.name).decode("utf-8")
        page = _with_title(_unlink_relative(text, card, Path(app.srcdir).parent))
        files[_MODEL_CARD_PAGE] = page.encode()
    else:
        logger.info("pixcolor_docs: no model card at %s; writing a placeholder page", card)
        files[_MODEL_CARD_PAGE] = _PLACEHOLDER.encode()
    target = Path(app.srcdir) / _MODEL_CARD_DIR
    target.mkdir(parents=True, exist_ok=True)
    for stale in target.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        if not (target / name).is_file() or (target / name).read_bytes() != data:
            (target / name).write_bytes(data)


_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")


def _unlink_relative(card: str, path: Path, repo: Path) -> str:
    """Relative Markdown links of the card point into the package or the repository, which
    the built site does not have: write them as the path from the repository root (links to
    the card itself become in-page anchors; absolute URLs and images stay)."""

    def fix(match: re.Match[str]) -> str:
        text, target = match.groups()
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            return match.group(0)
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve()
        if resolved == path.resolve():
            return f"[{text}](#{anchor})" if anchor else text
        try:
            shown = resolved.relative_to(repo.resolve()).as_posix()
        except ValueError:
            shown = file
        return f"{text} (`{shown}`)" if text.strip("`") != shown else f"`{shown}`"

    return _LINK.sub(fix, card)


def _with_title(card: str) -> str:
    """The card as a page: it needs one top-level heading, after any YAML front matter."""
    front = re.match(r"---\n.*?\n---\n", card, re.DOTALL)
    head, body = (card[: front.end()], card[front.end() :]) if front else ("", card)
    if re.search(r"^# ", body, re.MULTILINE):
        return card
    return f"{head}# The bundled model\n\n{body}"


# ----------------------------------------------------------------------------- tables
def _write_tables(app: Sphinx) -> None:
    import pixcolor
    from pixcolor.hub import WEIGHTS_NAME
    from pixcolor.presets import PRESETS
    from pixcolor.training.recipes import RECIPES

    presets = [["name", "what", "size", "where the files are", "licence of the weights"]]
    for name, preset in PRESETS.items():
        size = preset.size
        if preset.path is not None:
            where = f"inside the package: ``pixcolor/{preset.path}``"
            weights = Path(pixcolor.__file__).parent / preset.path / WEIGHTS_NAME
            size = size or (weights.stat().st_size if weights.is_file() else None)
        else:
            where = f"Hub repo ``{preset.repo_id}``"
            where += f", folder ``{preset.subfolder}``" if preset.subfolder else ""
            where += f", file ``{preset.filename}``" if preset.filename else ""
            where += f", revision ``{preset.revision}``"
            if preset.converted:
                where += f"; {preset.format} format, converted once on first use"
        made = preset.provenance[:1].upper() + preset.provenance[1:]
        what = preset.description + (f". {made}." if made else "")
        shown = f"about {size / 1e6:.1f} MB" if size else "unknown"
        presets.append([f"``{name}``", what, shown, where, preset.license or "not stated"])
    recipes = [["recipe", "generator", "discriminator", "trainer defaults"]]
    for name, recipe in RECIPES.items():
        recipes.append(
            [
                f"``{name}``",
                _kwargs(recipe.generator),
                _kwargs(recipe.discriminator),
                _kwargs(recipe.trainer),
            ]
        )
    target = Path(app.srcdir) / "generated"
    target.mkdir(exist_ok=True)
    _write_if_changed(target / "presets.inc", _list_table(presets, widths="10 38 10 27 15"))
    _write_if_changed(target / "recipes.inc", _list_table(recipes, widths="12 32 22 34"))


def _kwargs(values: dict[str, Any]) -> str:
    return ", ".join(f"``{k}={v!r}``" for k, v in values.items()) or "(defaults)"


def _list_table(rows: list[list[str]], widths: str) -> str:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in rows:
        for index, cell in enumerate(row):
            lines.append(("   * - " if index == 0 else "     - ") + cell)
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    """Leave an unchanged file alone, so Sphinx does not re-read the pages that include it."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- constants
def _drop_type_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A constant without a docstring of its own (``PRESETS = {...}``) gets none, rather
    than the docstring of its type (``dict``'s)."""
    if what in ("data", "attribute") and not callable(obj):
        own = type(obj).__doc__
        if isinstance(own, str) and lines and "\n".join(lines).strip() == _clean(own):
            lines.clear()


def _clean(doc: str) -> str:
    import inspect

    return (inspect.cleandoc(doc) or "").strip()


def _drop_object_base(app: Sphinx, name: str, obj: Any, options: Any, bases: list[type]) -> None:
    """No "Bases: object" line: it says nothing."""
    if bases == [object]:
        bases.clear()


def _plain_docutils_text(app: Sphinx, doctree: nodes.document) -> None:
    """Undo two effects of text parsed outside Sphinx's reader, as sphinx-argparse parses the
    ``--help`` texts with plain docutils: `x` in single backticks gets docutils' default
    role, italics, where ``default_role = "code"`` makes it code everywhere else; and on the
    command-line page, smart quotes turn the ``--`` of an option into an en dash."""
    for node in list(doctree.findall(nodes.title_reference)):
        text = node.astext()
        node.replace_self(nodes.literal(text, text))
    if app.env.docname != "cli":  # docs/cli.rst: the argparse help texts are pure ASCII
        return
    for node in list(doctree.findall(nodes.Text)):
        if "\u2013" in node or "\u2014" in node:
            fixed = str(node).replace("\u2014", "---").replace("\u2013", "--")
            node.parent.replace(node, nodes.Text(fixed))


# ----------------------------------------------------------------------------- aliases
def _resolve_alias(
    app: Sphinx, env: BuildEnvironment, node: nodes.Element, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve a Python reference to another name of an object documented once."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates.append(f"{module}.{target}")
        if cls:
            candidates.append(f"{module}.{cls}.{target}")
    documented = _documented(env)
    for candidate in candidates:
        name = _canonical(candidate, documented, _identities(env))
        if name is not None:
            entry = documented[name]
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name
            )
    return None


def _canonical(name: str, documented: dict[str, Any], identities: dict[int, str]) -> str | None:
    """The documented name of the object ``name`` imports to, if it is documented."""
    if not name.startswith("pixcolor"):
        return None
    parts = name.split(".")
    # The longest prefix that is a documented object's other name, then the rest as is:
    # ``pixcolor.colorizer.UNetGenerator.from_pretrained`` -> ``pixcolor.UNetGenerator`` +
    # ``.from_pretrained`` (bound methods are new objects on each access).
    for cut in range(len(parts), 0, -1):
        obj = _import(".".join(parts[:cut]))
        if obj is _MISSING or not _is_identifiable(obj):
            continue
        base = identities.get(id(obj))
        if base is None:
            continue
        full = ".".join([base, *parts[cut:]])
        if full in documented:
            return full
    return None


def _documented(env: BuildEnvironment) -> dict[str, Any]:
    return env.get_domain("py").objects  # type: ignore[attr-defined,no-any-return]


def _identities(env: BuildEnvironment) -> dict[int, str]:
    """``id(object) -> documented name`` over every documented pixcolor object (cached)."""
    documented = _documented(env)
    cache = getattr(env, "_pixcolor_identities", None)
    if cache is not None and cache[0] == len(documented):
        return cache[1]  # type: ignore[no-any-return]
    identities: dict[int, str] = {}
    for name in sorted(documented, key=lambda n: (n.count("."), n)):  # shortest name wins
        if name.startswith("pixcolor"):
            obj = _import(name)
            if obj is not _MISSING and _is_identifiable(obj):
                identities.setdefault(id(obj), name)
    env._pixcolor_identities = (len(documented), identities)  # type: ignore[attr-defined]
    return identities


_MISSING = object()


def _import(name: str) -> Any:
    """``pixcolor.a.B.c`` -> the object, importing the longest module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _is_identifiable(obj: Any) -> bool:
    """Objects whose identity names them: not small values that many names share."""
    return not isinstance(obj, (str, bytes, int, float, bool, tuple, type(None)))


# ----------------------------------------------------------------------------- completeness
def _check_api_complete(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn about each public name that no page documents."""
    import pixcolor

    documented = _documented(env)
    identities = _identities(env)
    required = [f"pixcolor.{name}" for name in pixcolor.__all__]
    for module_name in app.config.pixcolor_public_modules:
        required.append(module_name)
        module = importlib.import_module(module_name)
        required += [f"{module_name}.{name}" for name in getattr(module, "__all__", ())]
    missing = [
        name
        for name in required
        if name not in documented and _canonical(name, documented, identities) is None
    ]
    for name in missing:
        logger.warning("pixcolor_docs: public name %s is not documented; add it to docs/api/", name)
