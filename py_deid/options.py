"""The PS3.15 Annex E options and the settings of one de-identification run, as frozen objects."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterable, Literal

from ._standard.table_e1_1 import OPTION_COLUMNS

# Options of E.3 that are not columns of Table E.1-1: they act on pixels, not on attributes.
PIXEL_OPTIONS = ("clean_pixel_data", "clean_recognizable_visual_features")
OPTION_NAMES = OPTION_COLUMNS + PIXEL_OPTIONS

# CID 7050 code value for each option; 113100 is the Basic Profile itself.
OPTION_CODES = {
    "clean_pixel_data": "113101",
    "clean_recognizable_visual_features": "113102",
    "clean_graphics": "113103",
    "clean_structured_content": "113104",
    "clean_descriptors": "113105",
    "retain_long_full_dates": "113106",
    "retain_long_modified_dates": "113107",
    "retain_patient_characteristics": "113108",
    "retain_device_identity": "113109",
    "retain_uids": "113110",
    "retain_safe_private": "113111",
    "retain_institution_identity": "113112",
}
BASIC_PROFILE_CODE = "113100"

PixelPolicy = Literal["auto", "all", "off"]
TextPolicy = Literal["strict", "phi", "all"]


class OptionError(ValueError):
    """An option name or combination that the profile does not allow."""


@dataclass(frozen=True)
class Options:
    """Which E.3 options apply. Field names are the CLI's --option names."""

    retain_safe_private: bool = False
    retain_uids: bool = False
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_patient_characteristics: bool = False
    retain_long_full_dates: bool = False
    retain_long_modified_dates: bool = False
    clean_descriptors: bool = False
    clean_structured_content: bool = False
    clean_graphics: bool = False
    clean_pixel_data: bool = False
    clean_recognizable_visual_features: bool = False

    def __post_init__(self) -> None:
        if self.retain_long_full_dates and self.retain_long_modified_dates:
            # E.3.6: only one of the two Retain Longitudinal Temporal Information options may be used.
            raise OptionError("retain_long_full_dates and retain_long_modified_dates exclude each other")

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Options:
        chosen = {}
        for raw in names:
            name = raw.strip().replace("-", "_")
            if not name:
                continue
            if name not in OPTION_NAMES:
                raise OptionError(f"unknown option {raw!r}; known: {', '.join(OPTION_NAMES)}")
            chosen[name] = True
        return cls(**chosen)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


@dataclass(frozen=True)
class Trial:
    """Clinical-trial identifiers written into the 0012,xxxx attributes (all optional)."""

    sponsor_name: str = ""
    protocol_id: str = ""
    protocol_name: str = ""
    site_id: str = ""
    site_name: str = ""
    subject_id: str = ""
    subject_reading_id: str = ""
    time_point_id: str = ""
    time_point_description: str = ""
    coordinating_center_name: str = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str):
                raise OptionError(f"trial {f.name} must be text")
            if "\\" in value or any(ord(c) < 32 for c in value):
                raise OptionError(f"trial {f.name} holds a character DICOM text cannot carry")
            if len(value) > 64:
                raise OptionError(f"trial {f.name} is longer than 64 characters")


@dataclass(frozen=True)
class Settings:
    """Everything that decides the output for a given input and key."""

    options: Options = field(default_factory=Options)
    trial: Trial = field(default_factory=Trial)
    pixels: PixelPolicy = "auto"
    text: TextPolicy = "strict"

    def __post_init__(self) -> None:
        if self.pixels not in ("auto", "all", "off"):
            raise OptionError(f"pixels must be auto, all or off, not {self.pixels!r}")
        if self.text not in ("strict", "phi", "all"):
            raise OptionError(f"text must be strict, phi or all, not {self.text!r}")
