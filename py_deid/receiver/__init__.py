"""The receiving endpoint (`py-deid serve`): a DICOMweb STOW-RS receiver that verifies every instance with
the core's residual-PHI check before it stores it, keeps a SQLite ledger, optionally forwards to an upstream
DICOMweb archive, and serves the built web app on the same HTTPS origin.

Routes (bearer token with scope store or read; CORS only for --cors-origin):
  POST {base}/studies[/{study}]                        STOW-RS, multipart/related; type="application/dicom"
  GET  {base}/studies, .../{study}/series, .../{study}[/series/{series}]/instances     QIDO-RS subset
  GET  {base}/studies/{study}[/series/{series}[/instances/{sop}]]                      WADO-RS, as stored
  POST {base}/studies/{study}/certificates             a batch's PHI-free certificate (application/json)
  GET  {base}/studies/{study}/certificates[/{id}[/check]]
  GET  {base}/studies/{study}/certificates/{id}/signed  its receipt signed with the receiver's Ed25519 key
  GET  /receiver/status                                state (ok, or degraded while verification heals), counts
  GET  /.well-known/py-deid/signing-key.pem            the public key of those signatures (no token)
  GET  /*                                              the static web app (headers.json applied)
with {base} = /dicomweb. Failure Reason codes are listed in reasons.py.

Native host only (starlette, uvicorn, cryptography, httpx, python-multipart: the `serve` extra).
"""

REQUIRED = ("starlette", "uvicorn", "cryptography", "httpx", "python_multipart")


def check_available() -> None:
    """Raise ImportError naming the missing packages of the `serve` extra."""
    import importlib.util

    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"py-deid serve needs {', '.join(missing)}: pip install 'py_deid[serve]'")
