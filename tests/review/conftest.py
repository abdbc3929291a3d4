"""The review tests reuse the browser end-to-end fixtures (built site, real receiver, Debian's Chromium)."""

from tests.browser.conftest import artifacts, browser, dist, receiver, session_factory  # noqa: F401
