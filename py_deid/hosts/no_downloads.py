"""Stands in for pydicom.data.download in the browser: the same names, none of which reaches the network.

pydicom imports its test-data downloader whenever it is imported (pixels.processing -> data -> data_manager ->
download), and the downloader imports urllib.request, http.client and the email package: about two fifths of the
Python import time of a browser worker's start-up, for code the de-identifier must never run there (no byte of
an instance may leave the page but through the upload). The browser host puts this module in its place before
pydicom is first imported; anything that would download raises instead.
"""

from __future__ import annotations


class NoHashFound(KeyError):
    """As pydicom's: a test file without a known hash."""


def _refused(*_args, **_kwargs):
    raise RuntimeError("no downloads in the browser")


data_path_with_download = calculate_file_hash = get_cached_filehash = get_url_map = get_data_dir = _refused
