"""Driving the example portal in Chromium: open it, feed the uploader files, read what the portal saw."""

from __future__ import annotations

import json
from pathlib import Path

SHADOW = "#uploader"
EVENT_TYPES = ("deid-progress", "deid-file", "deid-review-required", "deid-uploaded", "deid-error", "deid-complete")


class PortalPage:
    def __init__(self, context, url: str) -> None:
        self.page = context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        context.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)

    def evaluate(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def ready(self) -> None:
        self.evaluate("() => document.querySelector('deid-uploader').whenReady()")

    def add_files(self, paths: list[Path]) -> None:
        self.page.set_input_files("deid-uploader >> #files", [str(p) for p in paths])

    def events(self) -> list[dict]:
        # Read as JSON text made without the portal's Array#toJSON (its toolkit changes JSON.stringify of arrays).
        text = self.evaluate("""() => {
            const saved = Array.prototype.toJSON;
            delete Array.prototype.toJSON;
            try { return JSON.stringify(window.SponsorPortal.events); } finally { Array.prototype.toJSON = saved; }
        }""")
        return json.loads(text)

    def wait_complete(self, count: int = 1, timeout_s: float = 240) -> dict:
        self.page.wait_for_function(
            f"() => window.SponsorPortal.events.filter(e => e.type === 'deid-complete').length >= {count}",
            timeout=timeout_s * 1000)
        return [e for e in self.events() if e["type"] == "deid-complete"][-1]["detail"]

    def shadow(self, script: str):
        """Run `script` (a function of the shadow root) in the page."""
        return self.evaluate(f"() => ({script})(document.querySelector('deid-uploader').shadowRoot)")

    def csp_violations(self) -> list[str]:
        return [line for line in self.console if "Content Security Policy" in line or "Refused" in line]
