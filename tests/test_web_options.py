"""The option names the browser accepts (OPTION_NAMES of web/src/config.js, evaluated by Node) are the core's
(py_deid.options.Options), in the same order: a name added to one and not the other fails here."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

from py_deid.options import Options

WEB = Path(__file__).parents[1] / "web"
READ = "const m = await import('./src/config.js'); process.stdout.write(JSON.stringify(m.OPTION_NAMES));"


def test_web_option_names_are_the_cores():
    node = shutil.which("node")
    assert node, "Node.js is needed (it builds the web app too)"
    out = subprocess.run([node, "--input-type=module", "-e", READ], cwd=WEB, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert json.loads(out) == [f.name for f in fields(Options)]
