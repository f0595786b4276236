"""The dbt docs as one page that opens from disk: dbt's own page with the manifest and the
catalog inlined, escaped for a `<script>` block.

`dbt docs generate --static` pastes both JSON files into the page's `<script>` as they are,
so a value that holds `</script>` ends the script there and whatever follows it is markup
that runs: the manifest carries the run's paths (a warehouse folder named
`x</script><img src=x onerror=…>` did just that) and its vars. Here each file is read as
JSON and written back with `script_json`, which escapes `<`, `>`, `&` and the JavaScript
line terminators: the same data, inert as markup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipelines.reporting.site_data import script_json

# What dbt's page (`<target>/index.html`, which `dbt docs generate` copies there) holds in
# place of the data, and the file each placeholder is filled from.
INLINED = {
    '"MANIFEST.JSON INLINE DATA"': "manifest.json",
    '"CATALOG.JSON INLINE DATA"': "catalog.json",
}


class DocsPageError(RuntimeError):
    """dbt's page is not the one this code knows how to fill."""


def static_docs_page(target: Path) -> str:
    """The page from what `dbt docs generate` wrote to `target` (its index.html, manifest.json
    and catalog.json), each JSON file inlined once where dbt's page holds its placeholder."""
    page = (target / "index.html").read_text(encoding="utf-8")
    for placeholder, name in INLINED.items():
        if page.count(placeholder) != 1:
            raise DocsPageError(
                f"dbt's docs page has {page.count(placeholder)} places for {name}, not one"
            )
    # in one pass over dbt's page: data that reads like the other placeholder stays data
    filled = {placeholder: script_json(json.loads((target / name).read_text(encoding="utf-8")))
              for placeholder, name in INLINED.items()}
    return re.sub("|".join(re.escape(placeholder) for placeholder in INLINED),
                  lambda found: filled[found[0]], page)
