"""The receiver's settings, as frozen objects built once by the CLI and handed to every part."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..inflate import InflateLimits
from ..options import Options

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 8 * GiB  # one STOW-RS body (streamed to disk, never held)
    max_instance_bytes: int = 1 * GiB  # one part of it
    max_instances: int = 5000  # parts per request
    max_part_header_bytes: int = 16 * 1024
    max_header_bytes: int = 16 * 1024  # request line + headers (HTTP layer)
    max_certificate_bytes: int = 4 * MiB
    read_timeout: float = 30.0  # seconds without a single body byte
    header_timeout: float = 15.0  # seconds to send the request line and headers
    handshake_timeout: float = 10.0  # seconds to complete a TLS handshake
    min_rate: int = 256  # bytes/s averaged over the body, enforced after min_rate_grace seconds
    min_rate_grace: float = 30.0
    max_connections: int = 512  # open connections; at the cap the oldest idle one is closed
    max_connections_per_client: int = 64  # the same, per client address
    drain_bytes: int = 16 * MiB  # body read and dropped before a refusal, so the client reads the status
    # A receiver inflates less than the CLI allows (DEFAULT_LIMITS): it takes data from the network.
    inflate: InflateLimits = InflateLimits(max_size=256 * MiB, max_ratio=100)
    worker_memory: int = 4 * GiB  # address space of a verification worker (RLIMIT_AS)
    min_free_bytes: int = 256 * MiB  # refuse (A700) rather than fill the disk


@dataclass(frozen=True)
class Forwarding:
    url: str  # upstream DICOMweb base, e.g. http://127.0.0.1:8042/dicom-web
    token: str | None = None  # bearer token for the upstream (read from a file, never a flag value)
    verify: str | bool = True  # CA file or True/False for the upstream's certificate
    batch_instances: int = 16
    batch_bytes: int = 64 * MiB
    backoff: float = 2.0  # first retry delay (s); doubles per attempt
    backoff_max: float = 300.0
    timeout: float = 120.0


@dataclass(frozen=True)
class ReceiverConfig:
    store: Path
    options: Options = field(default_factory=Options)
    limits: Limits = field(default_factory=Limits)
    forwarding: Forwarding | None = None
    cli_tokens: tuple[tuple[str, str], ...] = ()  # (site, token) given on the command line; never persisted
    token_file: Path | None = None  # default: <store>/tokens.json
    site_dir: Path | None = None  # the static web app; None serves no page
    cors_origins: tuple[str, ...] = ()
    public_url: str | None = None  # base for RetrieveURL; default: from each request's Host
    benchmark_sink: bool = False  # POST /bench/sink: the raw-upload baseline of the benchmark
    verify_workers: int = 2  # processes running the core's check (0: in the server's threads)
    review: str = "pixels"  # the served page's review policy (never/always/pixels), given to it in page-settings.json

    @property
    def tokens_path(self) -> Path:
        return self.token_file or self.store / "tokens.json"
