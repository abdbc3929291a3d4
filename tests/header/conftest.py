from __future__ import annotations

import pydicom
import pytest


@pytest.fixture()
def ct(samples):
    """A real CT instance with a name and ID the tests can look for."""
    ds = pydicom.dcmread(samples.path("CT_small.dcm"))
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "ID-4711"
    return ds
