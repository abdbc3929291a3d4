"""Fixtures of the embedding tests: the portal, the widget's asset host and the receiver on three origins."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import _build, artifacts, browser  # noqa: F401 - fixtures reused, not copied

from .servers import Portal, Serve


@pytest.fixture(scope="session")
def portal():
    p = Portal()
    yield p
    p.close()


@pytest.fixture(scope="session")
def widget_dist(tmp_path_factory, portal):
    """The production build, allowing the portal to frame the upload page."""
    return _build(tmp_path_factory.mktemp("widget") / "site", "--frame-ancestor", portal.origin)


@pytest.fixture(scope="session")
def assets(widget_dist, portal, tmp_path_factory):
    """The widget's asset host: the built folder, CORS for the portal (it also answers DICOMweb for the iframe
    example, whose page uploads to its own origin)."""
    s = Serve(tmp_path_factory.mktemp("assets") / "store",
              ("--site", str(widget_dist), "--cors-origin", portal.origin)).start()
    portal.asset_url = s.url
    portal.integrity = json.loads((widget_dist / "embed.json").read_text())["integrity"]
    yield s
    s.stop()


@pytest.fixture
def dicomweb(portal, tmp_path):
    """The sponsor's DICOMweb receiver on a third origin: no web app, CORS for the portal only."""
    options = ("--option", "retain_long_modified_dates", "--option", "clean_descriptors")  # the portal's profile
    s = Serve(tmp_path / "store", ("--no-site", "--cors-origin", portal.origin, *options)).start()
    portal.endpoint_url = s.url
    portal.wrong_tokens = 0
    portal.token_requests.clear()
    portal.extra_csp = ""
    portal.csp_edit = None
    portal.delays = {}
    yield s
    portal.csp_edit = None
    portal.delays = {}
    s.stop()


@pytest.fixture
def context(browser):  # noqa: F811 - the reused fixture
    ctx = browser.new_context(ignore_https_errors=True)
    yield ctx
    ctx.close()
