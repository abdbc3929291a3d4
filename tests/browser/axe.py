"""axe-core (npm, pinned in web/package.json with @axe-core/playwright) run in a page from Python Playwright.

The page's CSP allows no inline script, so the script is evaluated through the DevTools protocol (which a page's
CSP does not govern) rather than added as a <script> tag. axe walks open shadow roots, so the widget is checked."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = {"serious", "critical"}


def serious_violations(page, include: str | None = None) -> list[dict]:
    """[{id, impact, help, targets}] of serious or critical violations (of the whole page, or of `include`,
    a selector list axe understands: ['deid-uploader', '[part=review]'] reaches into the shadow root)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;void 0")
    found = page.evaluate("""async (include) => {
        const context = include ? { include: [include] } : document;
        const r = await axe.run(context, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5) }));
    }""", include)
    return [v for v in found if v["impact"] in SERIOUS]
