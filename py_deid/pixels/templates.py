"""Device templates: fixed regions by Manufacturer / Model / Rows / Columns (config/device_templates.toml)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache

from pydicom.dataset import Dataset

from ..package_data import config_text
from .geometry import Box
from .info import raw_text, value_of


@dataclass(frozen=True)
class Template:
    name: str
    boxes: tuple[Box, ...]
    manufacturer: str = ""
    model: str = ""
    rows: int = 0
    columns: int = 0

    def matches(self, manufacturer: str, model: str, rows: int, columns: int) -> bool:
        return ((not self.manufacturer or self.manufacturer in manufacturer.lower())
                and (not self.model or self.model in model.lower())
                and (not self.rows or self.rows == rows) and (not self.columns or self.columns == columns))


class TemplateError(ValueError):
    """The templates file is not what this module expects (the message names the entry)."""


def parse(text: str) -> tuple[Template, ...]:
    out = []
    for k, entry in enumerate(tomllib.loads(text).get("template", [])):
        try:
            boxes = tuple(tuple(int(v) for v in b) for b in entry["boxes"])
            if not boxes or any(len(b) != 4 or b[2] <= 0 or b[3] <= 0 for b in boxes):
                raise ValueError
            out.append(Template(str(entry.get("name", f"template {k + 1}")), boxes,
                                str(entry.get("manufacturer", "")).lower(), str(entry.get("model", "")).lower(),
                                int(entry.get("rows", 0)), int(entry.get("columns", 0))))
        except (KeyError, TypeError, ValueError):
            raise TemplateError(f"device template {k + 1}: needs boxes as [x, y, width, height]") from None
        if not (out[-1].manufacturer or out[-1].model):
            raise TemplateError(f"device template {k + 1}: needs a manufacturer or a model")
    return tuple(out)


@lru_cache(maxsize=1)
def default_templates() -> tuple[Template, ...]:
    return parse(config_text("device_templates.toml"))


def _text(ds: Dataset, keyword: str) -> str:
    raw = raw_text(ds, keyword)  # the same text without converting the element (one value only: str() of
    if raw is not None and "\\" not in raw:  # several is their list)
        return raw
    try:
        return str(value_of(ds, keyword, "") or "")
    except Exception:
        return ""


def boxes_for(ds: Dataset, templates: tuple[Template, ...] | None = None) -> tuple[list[Box], list[str]]:
    """The template boxes that apply to this instance, and the names of the templates used."""
    templates = default_templates() if templates is None else templates
    manufacturer, model = _text(ds, "Manufacturer"), _text(ds, "ManufacturerModelName")
    try:
        rows, columns = int(value_of(ds, "Rows")), int(value_of(ds, "Columns"))
    except (AttributeError, TypeError, ValueError):
        return [], []
    boxes, names = [], []
    for t in templates:
        if t.matches(manufacturer, model, rows, columns):
            boxes.extend(t.boxes)
            names.append(t.name)
    return boxes, names
