"""Report folders written by an attacker, for the site's safety tests.

Every payload, if it ever ran, would set `window.__pwned` to a tag naming its vector, so a
browser test can tell which one got through, and a parser test can look for the marker
in markup. Three folders:

- `hostile-card`: a card written by prunecard with a hostile `--name`, then a hostile body
  appended (script, event handlers, javascript: links, inline SVG, iframe, attr_list
  attributes, an element that shadows the theme's config); its assets/ hold SVGs with
  script in place of prunecard's figures, an extra SVG, an HTML page and a script file.
- `hostile-heading`: a hand-written card whose heading (the page's title) is markup.
- a folder named with markup and no card (the title is the folder name), whose
  report.json carries markup and backticks in every string the site prints.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from conftest import EXAMPLE_SPEC, build_minilm
from site_reports import bench, evaluation, write_report_dir

from analyzer.publish.site import _slug

MARK = "__pwned"


def js(tag: str) -> str:
    """The script every payload runs: it records which vector got through."""
    return f"window.{MARK}='{tag}'"


CARD_NAME = f"Name <script>{js('card-name')}</script> `x` [y](javascript:{js('card-name-link')})"
HEADING = (
    f"Hostile &lt;script&gt;{js('title-heading')}&lt;/script&gt; "
    f'<img src=x onerror="{js("title-heading-raw")}">'
)
FOLDER = f"folder <img src=x onerror={js('folder-name')}>"
# site pages are named after the model id: the card's is its hostile --name
CARD_PAGE = f"models/{_slug(CARD_NAME)}"

CARD_BODY = f"""
## Notes {{: onclick="{js("card-attr-list")}" }}

<script>{js("card-script")}</script>

<img src="nowhere.png" onerror="{js("card-onerror")}">

Read [the paper](javascript:{js("card-md-link")}) or
<a href="javascript:{js("card-html-link")}">this</a> or
<a href=" JaVaScRiPt:{js("card-mixed-case-link")}">that</a>.

<svg width="20" height="20" onload="{js("card-svg")}"><circle r="4"/></svg>

<iframe srcdoc="<script>{js("card-iframe")}</script>"></iframe>

<p id="__config">{{"base": "https://attacker.invalid/", "search": "assets/evil.js"}}</p>

<object data="assets/page.html"></object>

<form action="javascript:{js("card-form")}"><button>go</button></form>

<div style="background: url(http://attacker.invalid/{MARK}.png)">styled</div>

![Non-zero weights](assets/density.png) ![again](assets/density.png)

<figure data-prunecard-svg="heads"></figure>
"""

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" '
    f'onload="{js("{tag}-onload")}"><script>{js("{tag}-script")}</script>'
    '<circle r="10"/></svg>'
)

RECORD_STRINGS = {
    "command": f"prunecard card ``` `<img src=x onerror={js('record-command')}>`",
    "file": f"`<img src=x onerror={js('record-file')}>`.safetensors",
    "cpu": f"<script>{js('record-cpu')}</script>",
    "torch": f"<svg onload={js('record-torch')}>",
    "dtype": f"float32<img src=x onerror={js('record-dtype')}>",
    "eval_device": f"<img src=x onerror={js('record-eval-device')}>",
    "data": f"data/`<img src=x onerror={js('record-data')}>`.json",
    "version": f"0.1</code><script>{js('record-version')}</script>",
}
# the vectors whose text must reach the site, escaped (the rest is removed by sanitising)
RECORD_TAGS = ("command", "file", "cpu", "torch", "dtype", "eval-device", "data", "version")
SHOWN_AS_TEXT = (
    js("card-name"),
    js("title-heading"),
    js("folder-name"),
    *(js(f"record-{tag}") for tag in RECORD_TAGS),
)


def make_hostile_reports(base: Path) -> list[Path]:
    ckpt = build_minilm(base / "ckpt", EXAMPLE_SPEC)
    card = write_report_dir(base / "hostile-card", ckpt, CARD_NAME)
    readme = card / "README.md"
    readme.write_text(readme.read_text() + CARD_BODY)
    assets = card / "assets"
    for stem in ("density", "heads", "extra"):
        (assets / f"{stem}.svg").write_text(SVG.replace("{tag}", f"asset-{stem}"))
    (assets / "page.html").write_text(f"<script>{js('asset-html')}</script>")
    (assets / "evil.js").write_text(js("asset-js"))

    heading = base / "hostile-heading"
    heading.mkdir()
    record = json.loads((card / "report.json").read_text())
    record["publication"]["model_id"] = "hostile-heading"
    (heading / "report.json").write_text(json.dumps(record))
    (heading / "README.md").write_text(f"# {HEADING}\n\nA card whose title is markup.\n")

    folder = base / FOLDER
    folder.mkdir()
    record = json.loads((card / "report.json").read_text())
    s = RECORD_STRINGS
    record["publication"]["model_id"] = FOLDER
    prov = record["provenance"]
    prov["command"], prov["tool_version"] = s["command"], s["version"]
    prov["file_sha256"] = {s["file"]: "ef" * 32}
    prov["environment"]["cpu"] = s["cpu"]
    b = dataclasses.asdict(bench(10.0, 4.0))
    b["dtype"] = s["dtype"]
    b["environment"].update(cpu=s["cpu"], torch=s["torch"])
    e = dataclasses.asdict(evaluation(61.25, 64.5, 200))
    e.update(device=s["eval_device"], data=s["data"])
    record.update(bench=b, evaluation=e)
    (folder / "report.json").write_text(json.dumps(record))
    return [card, heading, folder]
