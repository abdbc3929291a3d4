"""elements.made_element makes the DataElement pydicom's constructor makes (validation ignored), though it
converts the common values itself and passes them as already converted: the same attributes, the same value
type and state, for every VR, with pydicom's date conversion off and on, for standard, private and sequence
tags."""

from __future__ import annotations

import pytest
from pydicom import config
from pydicom.dataelem import DataElement

from py_deid.elements import KNOWN_VRS, made_element, new_element

TAGS = [0x00100020, 0x00100010, 0x00080018, 0x00120064, 0x00091010, 0x00080020]
VALUES = [None, "", "ABC", "1.2.840.10008.1.2", "DOE^JOHN", " PADDED ", "A\\B", "2.25.123\\2.25.4", "20260101",
          "ÄRZTIN^Ö", b"AB", 7, ["A", "B"]]


def _state(elem: DataElement) -> dict:
    state = dict(vars(elem))
    value = state.pop("_value")
    state["value type"] = type(value)
    state["value"] = value
    if hasattr(value, "__dict__"):  # PersonName, MultiValue: state of their own
        state["value state"] = {k: _own(v, elem) for k, v in vars(value).items()}
    return state


def _own(v, elem):
    """A method bound to the element itself (MultiValue's converter) as what it is, not which element."""
    return ("method of the element", v.__func__) if getattr(v, "__self__", None) is elem else v


@pytest.mark.parametrize("datetime_conversion", [False, True])
def test_made_element_is_pydicoms_element(monkeypatch, datetime_conversion):
    monkeypatch.setattr(config, "datetime_conversion", datetime_conversion)
    compared = 0
    for tag in TAGS:
        for vr in sorted(KNOWN_VRS):
            for value in VALUES:
                try:
                    expected = DataElement(tag, vr, value, validation_mode=config.IGNORE)
                except Exception as e:  # pydicom refuses it: so must made_element
                    with pytest.raises(type(e)):
                        made_element(tag, vr, value)
                    continue
                got = made_element(tag, vr, value)
                assert _state(got) == _state(expected), (hex(tag), vr, value)
                compared += 1
    assert compared > 1000


def test_new_element_validates_where_pydicom_raises(monkeypatch):
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.RAISE)
    with pytest.raises(ValueError):
        new_element(0x00080060, "CS", "lower case")  # Modality: CS allows no lower case
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.WARN)
    assert new_element(0x00080060, "CS", "lower case").value == "lower case"
