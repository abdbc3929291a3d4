"""The portal and the widget leave each other alone: styles neither way, scripts neither way; theming through the
documented custom properties and parts; readable at 360 px; strings localised."""

from __future__ import annotations

import pytest

from tests.browser import corpus

from .portal_page import PortalPage

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROPS = ["font-family", "font-size", "font-weight", "font-style", "font-variant-caps", "line-height", "color",
         "letter-spacing", "text-transform", "text-align", "margin-top", "margin-bottom", "padding-top", "padding-left",
         "border-top-width", "border-top-style", "box-sizing", "display", "white-space"]
THEMED = ["background-color", "border-top-color", "border-top-left-radius"]  # what the portal's theme may change
INSIDE = ["[part=panel]", "h1", ".lead", "[part=dropzone]", ".hint", ".pickers .button", "[part=counts]", "th",
          "[part=token-form] button", "#reviewer", "[part=stages] li"]
OUTSIDE = ["body", "header.topbar", "main", "h1", "p.intro", "form", ".card", "label", "select", "textarea",
           "#submit-visit", "#upload-status", "footer", ".uploader-slot"]

STYLE_OF = """([root, selectors, props]) => {
    const scope = root ? document.querySelector('deid-uploader').shadowRoot : document;
    return Object.fromEntries(selectors.map((sel) => {
        const el = scope.querySelector(sel);
        const cs = getComputedStyle(el);
        return [sel, Object.fromEntries(props.map((p) => [p, cs.getPropertyValue(p)]))];
    }));
}"""
GLOBALS = """() => ({
    window: Object.keys(window).sort(),
    array: Object.getOwnPropertyNames(Array.prototype).sort(),
    object: Object.getOwnPropertyNames(Object.prototype).sort(),
    dollar: String(window.$),
    sheets: document.styleSheets.length,
    adopted: document.adoptedStyleSheets.length,
})"""


def shown(p: PortalPage) -> None:
    p.page.wait_for_function("() => !document.querySelector('deid-uploader').shadowRoot.querySelector('[part=panel]').hidden")


def test_styles_and_scripts_do_not_leak(context, portal, assets, dicomweb):
    bare = PortalPage(context, portal.origin + "/bare.html")
    shown(bare)
    reference = bare.evaluate(STYLE_OF, [True, INSIDE, PROPS + THEMED])
    assert reference["h1"]["font-size"] == "24px" and reference["[part=panel]"]["font-size"] == "16px"

    p = PortalPage(context, portal.origin + "/portal.html")
    shown(p)
    inside = p.evaluate(STYLE_OF, [True, INSIDE, PROPS + THEMED])
    # The portal's reset, 62.5 % root font size, serif body, uppercase buttons and `div` line-height stay out.
    for sel in INSIDE:
        for prop in PROPS:
            assert inside[sel][prop] == reference[sel][prop], (sel, prop, inside[sel][prop], reference[sel][prop])
    # ...while its theme, through the documented hooks, comes in.
    accent = "rgb(122, 28, 59)"
    assert inside[".pickers .button"]["background-color"] == accent != reference[".pickers .button"]["background-color"]
    assert inside["[part=dropzone]"]["border-top-color"] == "rgb(179, 139, 150)"  # deid-uploader::part(dropzone)
    assert inside[".pickers .button"]["border-top-left-radius"] == "0px"  # --deid-radius: 0

    # The widget's own styles stay in: the portal looks the same with and without it.
    without = PortalPage(context, portal.origin + "/portal.html?nowidget")
    without.page.wait_for_load_state("load")
    props = PROPS + THEMED
    assert p.evaluate(STYLE_OF, [False, OUTSIDE, props]) == without.evaluate(STYLE_OF, [False, OUTSIDE, props])
    # ...and so do its scripts: no new globals, built-ins untouched, the portal's $ still the portal's, no styles
    # added to the document.
    g_with, g_without = p.evaluate(GLOBALS), without.evaluate(GLOBALS)
    assert g_with == g_without, (g_with, g_without)
    assert "each" in g_with["array"] and "portalToolkit" in g_with["object"]  # the toolkit really is there
    assert not p.csp_violations() and not [c for c in p.console if "pageerror" in c], p.console


def test_narrow_portal_360px(browser, portal, assets, dicomweb, samples, tmp_path, artifacts):
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 360, "height": 780})
    try:
        files = [corpus.plant(samples.path("CT_small.dcm"), tmp_path / "a-rather-long-folder-name" / corpus.PLANTED_FILE_NAME)]
        (tmp_path / "readme-with-a-long-name-from-the-cd.txt").write_text("not DICOM\n")
        files.append(tmp_path / "readme-with-a-long-name-from-the-cd.txt")
        p = PortalPage(context, portal.origin + "/portal.html")
        p.ready()
        p.add_files(files)
        p.wait_complete()
        p.page.evaluate("() => document.querySelector('deid-uploader').scrollIntoView()")
        p.page.screenshot(path=str(artifacts / "widget-portal-360.png"), full_page=True)
        layout = p.shadow("""(root) => ({
            page: document.documentElement.scrollWidth,
            host: document.querySelector('deid-uploader').getBoundingClientRect().width,
            panel: [root.querySelector('[part=panel]').scrollWidth, root.querySelector('[part=panel]').clientWidth],
            thead: getComputedStyle(root.querySelector('thead')).display,
            overflowing: Array.from(root.querySelectorAll('[part=panel] *'))
                .filter((el) => el.getBoundingClientRect().right > root.querySelector('[part=panel]').getBoundingClientRect().right + 1)
                .map((el) => el.tagName + '.' + el.className),
            fontSize: getComputedStyle(root.querySelector('td')).fontSize,
        })""")
        assert layout["page"] <= 360, layout
        assert layout["panel"][0] <= layout["panel"][1] and not layout["overflowing"], layout
        assert layout["thead"] == "none"  # one card per file instead of a four-column table
        assert float(layout["fontSize"].removesuffix("px")) >= 14, layout
    finally:
        context.close()


def test_strings_are_localised(context, portal, assets):
    p = PortalPage(context, portal.origin + "/bare.html")
    shown(p)
    read = """(root) => ({title: root.querySelector('h1').textContent, pick: root.querySelector('.pickers span').textContent,
        stage: root.querySelector('[data-stage=runtime]').textContent, counts: root.querySelector('[part=counts]').textContent,
        drop: root.querySelector('[part=dropzone]').getAttribute('aria-label')})"""
    english = p.shadow(read)
    assert english["title"] == "De-identify and upload DICOM" and english["pick"] == "Choose files…"
    p.evaluate("() => { document.querySelector('deid-uploader').lang = 'de-CH'; }")
    german = p.shadow(read)
    assert german == {**german, "title": "DICOM de-identifizieren und hochladen", "pick": "Dateien auswählen…",
                      "counts": "Noch keine Dateien.", "drop": "Ablagebereich"}
    assert german["stage"].startswith("Python-Laufzeit: ")
    # A portal's own wording, through `strings` (text only: markup stays text).
    p.evaluate("() => { document.querySelector('deid-uploader').strings = {title: '<b>Bilder</b> für Visite 3'}; }")
    assert p.shadow("(root) => [root.querySelector('h1').textContent, root.querySelector('h1 b')]") == ["<b>Bilder</b> für Visite 3", None]
    p.evaluate("() => { const el = document.querySelector('deid-uploader'); el.strings = null; el.removeAttribute('lang'); }")
    assert p.shadow(read)["title"] == english["title"]  # back to the page's language
