"""Sphinx configuration of the pixcolor documentation.

Build with ``make -C docs html`` (warnings are errors) or ``bash docs/build.sh``.
The example gallery (``examples/plot_*.py``) is executed during the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pixcolor

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

# -- Project -------------------------------------------------------------------------------
project = "pixcolor"
author = "The pixcolor developers"
copyright = "The pixcolor developers, MIT licence"
release = pixcolor.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "myst_parser",
    "pixcolor_docs",  # _ext/pixcolor_docs.py: API completeness check, aliases, model card
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
default_role = "code"  # `x` renders as code, as in Markdown, never as an unresolved reference

# -- API reference -------------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's page lists exactly its __all__
autosummary_imported_members = True  # pixcolor.training re-exports from its submodules
autosummary_context = {"toplevel": sorted(pixcolor.__all__)}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_type_aliases = {"_M": "Self"}  # hub.py's TypeVar for "an instance of the class called"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = False
autodoc_default_options = {"show-inheritance": True}
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True
add_module_names = False
python_display_short_literal_types = True
python_use_unqualified_type_names = True

# -- Cross-references to other projects (offline) ------------------------------------------
# No network at build time, so inventories come from local files only: Debian's
# ``python3-doc`` (Python) and ``python-pil-doc`` (Pillow) packages. Each is used when it
# is installed and left out otherwise (references then render as plain text, no warning).
# NumPy and PyTorch publish no inventory in any package available here: left out.


def _local_inventories() -> dict[str, tuple[str, str]]:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = {
        "python": [
            f"/usr/share/doc/python{minor}/html/objects.inv",
            "/usr/share/doc/python3/html/objects.inv",
        ],
        "PIL": ["/usr/share/doc/python-pil-doc/html/objects.inv"],
    }
    sites = {
        "python": "https://docs.python.org/{version}/",
        "PIL": "https://pillow.readthedocs.io/en/{version}/",
    }
    mapping = {}
    for name, paths in candidates.items():
        for path in paths:
            version = _inventory_version(path)
            if version is not None:
                mapping[name] = (sites[name].format(version=version), path)
                break
    return mapping


def _inventory_version(path: str) -> str | None:
    """The ``# Version:`` line of an objects.inv header (links go to that version)."""
    try:
        with open(path, "rb") as f:
            head = f.read(200).decode("utf-8", "replace")
    except OSError:
        return None
    found = re.search(r"^# Version: (\S+)", head, re.MULTILINE)
    return found.group(1) if found else None


intersphinx_mapping = _local_inventories()
intersphinx_timeout = 1

# -- Example gallery -----------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("pixcolor",),
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    "reset_modules": ("matplotlib",),
    "matplotlib_animations": False,
    "image_srcset": [],
    "thumbnail_size": (400, 280),
}

# -- Markdown (the changelog, the bundled model's card) --------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pixcolor {release}"
html_static_path = ["_static"]
html_css_files = ["pixcolor.css"]
html_show_sourcelink = False
html_theme_options = {"navigation_with_keys": True}

# -- Completeness check (_ext/pixcolor_docs.py) ----------------------------------------------
# Besides every name in pixcolor.__all__, each name in these modules' __all__ must be
# documented somewhere in docs/api/, or the build fails.
pixcolor_public_modules = [
    "pixcolor.lab",
    "pixcolor.images",
    "pixcolor.data",
    "pixcolor.metrics",
    "pixcolor.hub",
    "pixcolor.presets",
    "pixcolor.models",
    "pixcolor.training",
    "pixcolor.training.recipes",
    "pixcolor.batch",
    "pixcolor.convert",
    "pixcolor.export",
    "pixcolor.errors",
    "pixcolor.cli",
    "pixcolor.app",
]
