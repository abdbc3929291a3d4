"""Configuration by attributes and the `config` property: wrong or missing values reported in the element and as
deid-error, never a silent no-op; limits and the key provider honoured; reset(); a token the endpoint keeps refusing."""

from __future__ import annotations

import pytest

from .portal_page import PortalPage
from .servers import PSEUDONYM_KEY, TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LISTEN = """() => {
    window.__events = [];
    const el = document.querySelector('deid-uploader');
    for (const t of ['deid-progress', 'deid-file', 'deid-review-required', 'deid-uploaded', 'deid-error', 'deid-complete']) {
        el.addEventListener(t, (e) => window.__events.push({type: t, detail: structuredClone(e.detail)}));
    }
}"""
ADD = """async (names) => {
    const el = document.querySelector('deid-uploader');
    const files = await Promise.all(names.map(async ([name, url]) => new File([await (await fetch(url)).arrayBuffer()], name)));
    try { return {queued: await el.addFiles(files)}; } catch (e) { return {error: e.name, settings: e.settings || []}; }
}"""


def events(p: PortalPage, kind: str | None = None) -> list[dict]:
    return [e for e in p.evaluate("() => window.__events") if kind is None or e["type"] == kind]


def error_text(p: PortalPage) -> str | None:
    return p.shadow("(root) => root.querySelector('[part=error]').hidden ? null : root.querySelector('[part=error]').textContent")


def bare(context, portal) -> PortalPage:
    p = PortalPage(context, portal.origin + "/bare.html")
    p.evaluate(LISTEN)
    return p


def serve_samples(p: PortalPage, samples, names: list[str]) -> list[list[str]]:
    """The files, fetched by the page from a route of the test (never from the network)."""
    def answer(data: bytes):
        return lambda route: route.fulfill(body=data)  # (Playwright passes the request too to a 2-argument handler)

    for name in names:
        p.page.route(f"**/sample/{name}", answer(samples.path(name).read_bytes()))
    return [[name, f"{p.page.url.rsplit('/', 1)[0]}/sample/{name}"] for name in names]


def test_wrong_and_missing_values_are_reported(context, portal, assets, dicomweb, samples):
    p = bare(context, portal)
    files = serve_samples(p, samples, ["CT_small.dcm"])
    p.evaluate("""() => { document.querySelector('deid-uploader').config = {
        endpont: 'https://x.example', pixels: 'bogus', maxFileSize: '-3 MB', tokenProvider: 'not a function',
        subjectId: 'line one\\nline two', options: 'retain_uids retain_everything', modalities: 'C*T'}; }""")
    p.page.wait_for_function("() => window.__events.some(e => e.type === 'deid-error')")
    err = events(p, "deid-error")[0]["detail"]
    assert err["name"] == "ConfigError" and err["code"] == "config"
    assert set(err["settings"]) == {"endpont", "pixels", "max-file-size", "tokenProvider", "subject-id", "options",
                                    "modalities"}
    assert "retain_everything" in err["message"] and "line one" not in err["message"]
    shown = error_text(p)
    assert shown.startswith("The uploader is not configured correctly:") and "endpont is not a setting" in shown
    assert p.evaluate("() => document.querySelector('deid-uploader').configError.settings.length") == 7
    # Files given now are refused, loudly: the promise rejects, the event comes again, nothing is processed.
    assert p.evaluate(ADD, files) == {"error": "ConfigError", "settings": err["settings"]}
    assert len(events(p, "deid-error")) == 2 and not events(p, "deid-file")

    # Fixed: the error goes away. An endpoint without a token or provider: the token is asked for, and the files
    # are queued meanwhile (de-identified, waiting for it), never dropped.
    p.evaluate(f"() => {{ document.querySelector('deid-uploader').config = {{endpoint: '{dicomweb.url}/dicomweb'}}; }}")
    p.page.wait_for_function("() => document.querySelector('deid-uploader').configError === null")
    assert error_text(p) is None
    assert p.shadow("(root) => root.querySelector('[part=token-form]').hidden") is False
    assert p.evaluate(ADD, files) == {"queued": 1}
    assert error_text(p) is None and len(events(p, "deid-error")) == 2
    p.evaluate("() => document.querySelector('deid-uploader').reset()")

    # What the portal declares mandatory must be there.
    p.evaluate("() => { document.querySelector('deid-uploader').setAttribute('require', 'subject-id token'); }")
    p.page.wait_for_function("() => window.__events.filter(e => e.type === 'deid-error').length >= 3")
    assert events(p, "deid-error")[-1]["detail"]["settings"] == ["subject-id", "token"]
    p.evaluate("() => { document.querySelector('deid-uploader').removeAttribute('require'); }")

    # The same settings as attributes are checked the same way.
    p.evaluate("() => { const el = document.querySelector('deid-uploader'); el.config = {}; el.setAttribute('review', 'sometimes'); }")
    p.page.wait_for_function("() => window.__events.filter(e => e.type === 'deid-error').length >= 4")
    assert events(p, "deid-error")[-1]["detail"]["settings"] == ["review"]
    assert dicomweb.stored() == {}


def test_limits_key_provider_and_reset(context, portal, assets, samples):
    p = bare(context, portal)
    files = serve_samples(p, samples, ["CT_small.dcm", "MR_small_expb.dcm", "siemens_dwi_1000.dcm"])
    p.evaluate(f"""() => {{
        const el = document.querySelector('deid-uploader');
        el.setAttribute('modalities', 'MR US');
        el.setAttribute('max-file-size', '1MB');
        window.__keyCalls = 0;
        el.pseudonymKeyProvider = async () => {{ window.__keyCalls += 1; return '{PSEUDONYM_KEY}'; }};
    }}""")
    assert p.evaluate(ADD, files) == {"queued": 3}
    p.page.wait_for_function("() => window.__events.some(e => e.type === 'deid-complete')", timeout=120000)
    final = {e["detail"]["index"]: e["detail"] for e in events(p, "deid-file")}
    assert (final[0]["status"], final[0]["code"], final[0]["sopUid"]) == ("skipped", "modality", "")  # a CT
    assert final[1]["status"] == "deidentified" and final[1]["modality"] == "MR"  # no endpoint: kept local
    assert (final[2]["status"], final[2]["code"]) == ("skipped", "too-large")  # 1.7 MB
    assert p.evaluate("() => window.__keyCalls") == 1
    assert p.shadow("(root) => [root.querySelector('[part=key-notice]').hidden, root.querySelector('[part=local-notice]').hidden]") == [True, False]
    first_uid = final[1]["sopUid"]

    # reset(): the table and summary go, the workers stay; the same key (now as an attribute) gives the same UIDs.
    p.evaluate(f"""() => {{
        const el = document.querySelector('deid-uploader');
        el.reset();
        el.pseudonymKeyProvider = null;
        el.setAttribute('pseudonym-key', '{PSEUDONYM_KEY}');
    }}""")
    assert p.shadow("(root) => [root.querySelectorAll('tbody tr').length, root.querySelector('[part=summary]').hidden]") == [0, True]
    assert p.evaluate("() => document.querySelector('deid-uploader').state") == "idle"
    assert p.evaluate(ADD, files[1:2]) == {"queued": 1}
    p.page.wait_for_function("() => window.__events.filter(e => e.type === 'deid-complete').length >= 2", timeout=120000)
    assert events(p, "deid-file")[-1]["detail"]["sopUid"] == first_uid
    assert p.evaluate("() => window.__keyCalls") == 1

    # A key provider that fails: reported, nothing processed.
    p.evaluate("""() => { const el = document.querySelector('deid-uploader'); el.reset();
        el.removeAttribute('pseudonym-key'); el.pseudonymKeyProvider = async () => { throw new Error('vault down'); }; }""")
    result = p.evaluate(ADD, files[1:2])
    assert result == {"error": "ConfigError", "settings": ["pseudonymKeyProvider"]}
    assert "vault down" not in events(p, "deid-error")[-1]["detail"]["message"]


def test_token_refused_after_a_fresh_one(context, portal, assets, dicomweb, samples):
    """The provider is asked again after a 401; if the endpoint refuses that token too, the files fail with a
    clear reason and the portal gets one `unauthorized` error (no endless retries, nothing stored)."""
    p = bare(context, portal)
    files = serve_samples(p, samples, ["CT_small.dcm"])
    p.evaluate(f"""() => {{
        const el = document.querySelector('deid-uploader');
        window.__reasons = [];
        el.config = {{endpoint: '{dicomweb.url}/dicomweb',
                      tokenProvider: async ({{reason}}) => {{ window.__reasons.push(reason); return 'not-{TOKEN}'; }}}};
    }}""")
    assert p.evaluate(ADD, files) == {"queued": 1}
    p.page.wait_for_function("() => window.__events.some(e => e.type === 'deid-complete')", timeout=120000)
    # Asked before the request, and once more after the 401. (The receiver answers 401 before reading the body and
    # closes the connection; now and then the browser sees that as a reset, retries, and asks with "upload" again.)
    reasons = p.evaluate("() => window.__reasons")
    assert reasons[-1] == "unauthorized" and set(reasons[:-1]) == {"upload"} and len(reasons) <= 4, reasons
    errors = [e["detail"] for e in events(p, "deid-error")]
    assert [(e["name"], e["code"]) for e in errors] == [("Unauthorized", "unauthorized")]
    assert events(p, "deid-file")[-1]["detail"]["status"] == "failed"
    assert "not-" + TOKEN not in str(p.evaluate("() => window.__events")) and dicomweb.stored() == {}


LATE = 1.5  # seconds: the portal's own module script arrives this long after the widget's module
# The name of every worker the page starts (the OCR workers each de-identification worker starts are its own).
STARTED_WORKERS = """(() => {
    const Base = window.Worker;
    window.__startedWorkers = [];
    window.Worker = class extends Base {
        constructor(url, options) { super(url, options); window.__startedWorkers.push(options?.name ?? ''); }
    };
})();"""


def test_a_policy_that_blocks_the_widget_is_reported(context, portal, assets, dicomweb):
    """A portal whose CSP forgot the asset host for styles and workers, and whose own script (with its listeners)
    arrives late: the element says what was blocked, keeps every error, and the portal hears them all."""
    portal.csp_edit = lambda policy: (policy.replace(f"style-src 'self' {assets.url}", "style-src 'self'")
                                      .replace(f"worker-src blob: {assets.url}", "worker-src blob:"))
    portal.delays = {"portal.js": LATE}
    p = PortalPage(context, portal.origin + "/portal.html")
    # The element's own record, which cannot have been sent before the test looked.
    p.page.wait_for_function("() => new Set(document.querySelector('deid-uploader').errors.map(e => e.code)).size >= 3",
                             timeout=60000)
    recorded = p.evaluate("() => document.querySelector('deid-uploader').errors")
    assert {e["code"] for e in recorded} == {"stylesheet", "csp", "startup"}, recorded
    # The stylesheet and CSP errors came before portal.js ran: its listener got them all the same, in order.
    heard = [e["detail"] for e in p.events() if e["type"] == "deid-error"]
    assert heard[: len(recorded)] == recorded
    csp = next(e for e in recorded if e["code"] == "csp")
    assert "style-src" in csp["message"] and assets.url in csp["message"] and ".css" not in csp["message"]
    assert error_text(p) and p.shadow("(root) => root.querySelector('[part=panel]').hidden") is False


def test_a_late_portal_script_configures_the_workers(context, portal, assets, dicomweb):
    """On an 8-core machine (7 workers by default) a portal whose script arrives late still gets the one worker
    its trial settings ask for (`poolSize: 1`), and no error."""
    context.add_init_script("Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', {get: () => 8});")
    context.add_init_script(STARTED_WORKERS)
    portal.delays = {"portal.js": LATE}
    p = PortalPage(context, portal.origin + "/portal.html")
    assert p.evaluate("() => navigator.hardwareConcurrency") == 8
    p.ready()
    assert p.evaluate("() => window.__startedWorkers") == ["py_deid-0"]
    assert p.evaluate("() => document.querySelector('deid-uploader').pool.size") == 1
    assert p.evaluate("() => document.querySelector('deid-uploader').errors") == []
    startup = [e["detail"] for e in p.events() if e["type"] == "deid-progress"]
    assert startup and all(d["phase"] == "startup" for d in startup)
    assert not [e for e in p.events() if e["type"] == "deid-error"]
