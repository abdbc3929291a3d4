"""`--pixels off` without a reviewer's plan: what the pixel step does then, in a module that imports none of the
step's (OCR, text screening, templates, the frame store). A header-only run imports only this, so its start-up
does not pay for the pixel modules (tests/cli/test_startup.py); `step.clean` calls the same function, so the two
cannot drift apart."""

from __future__ import annotations

from pydicom.dataset import Dataset

from .outcome import PixelError, PixelOutcome


def applies(settings, plan: dict | None) -> bool:
    """True where step.clean would neither read nor mask anything: pixels off and no plan (a plan, even with
    pixels off, is carried out)."""
    return plan is None and settings.pixels == "off"


def unchecked(ds: Dataset, transfer_syntax: str) -> PixelOutcome:
    """The outcome of the pixel step for `applies`: nothing checked, the codestream's extras still dropped."""
    without_codestream_extras(ds, transfer_syntax)
    return PixelOutcome(required=False, reason="pixels-off")


def without_codestream_extras(ds: Dataset, transfer_syntax: str) -> None:
    """Pixels not checked (--pixels off) are still not written out with what a compressed frame carries beside
    its image: a JPEG COM or APPn segment, a JPEG 2000 comment, bytes after its end (encapsulation.sanitized;
    a checked image has them dropped when its frames are opened). Text there is text nothing reads, PHI or not."""
    from .encapsulation import J2K_FAMILY, JPEG_FAMILY, JPEG_LS, split_clean
    from .info import PixelCodecError

    if "PixelData" not in ds or transfer_syntax not in JPEG_FAMILY | JPEG_LS | J2K_FAMILY:
        return
    try:
        split_clean(ds, int(ds.get("NumberOfFrames", 1) or 1), transfer_syntax)
    except (TypeError, ValueError):
        raise PixelError("pixel-description", "number of frames invalid") from None
    except PixelCodecError as e:
        raise PixelError(getattr(e, "code", "pixel-data"), str(e)) from None
