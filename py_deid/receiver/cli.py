"""`py-deid serve`: arguments and start-up (the lead's py_deid/cli.py wires the subcommand to these)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ..options import OptionError, Options
from . import check_available

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        value = float(t[:len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 8G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("sizes are not negative")
    return int(value * _UNITS[unit])


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    p.add_argument("--store", type=Path, default=None,
                   help="folder for instances, the ledger, tokens and the TLS certificate (default: a per-user data "
                        "folder, printed at start)")
    p.add_argument("--token", action="append", default=[], metavar="[SITE:]TOKEN",
                   help="accept this bearer token (repeatable); without any, one is created and printed")
    p.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS (loopback addresses only)")
    g = p.add_argument_group("web app")
    g.add_argument("--site", type=Path, help="folder of the built web app (default: web/dist of the checkout)")
    g.add_argument("--no-site", action="store_true", help="serve DICOMweb only")
    g.add_argument("--no-build", action="store_true", help="never run build_wasm.py when the site is missing")
    g.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="a sponsor portal origin allowed to call the endpoint from a browser (repeatable)")
    g.add_argument("--review", choices=("pixels", "always", "never"), default="pixels",
                   help="which images the page holds for a reviewer's sign-off before upload: pixels (default: "
                        "those with text found or masked), always, never")
    g.add_argument("--public-url", help="origin clients see, for RetrieveURL (default: from each request)")
    g = p.add_argument_group("TLS")
    g.add_argument("--cert-file", type=Path, help="certificate chain (PEM) instead of the generated one")
    g.add_argument("--key-file", type=Path, help="private key (PEM) of --cert-file")
    g.add_argument("--tls-name", action="append", default=[], metavar="NAME",
                   help="extra host name or IP for the generated certificate (repeatable)")
    g = p.add_argument_group("verification")
    g.add_argument("--option", action="append", default=[], metavar="NAME",
                   help="PS3.15 option of the trial's profile, as for deidentify (repeatable)")
    g.add_argument("--verify-workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes that verify instances (default: 2, or 1 on a single core)")
    g = p.add_argument_group("tokens (these act on the token file and exit)")
    g.add_argument("--token-file", type=Path, help="token file (default <store>/tokens.json)")
    g.add_argument("--new-token", metavar="SITE", help="create a token for SITE, print it once, exit")
    g.add_argument("--scope", action="append", choices=("store", "read", "read-all"), default=None,
                   help="scope of --new-token (repeatable; default store): read sees the token's own site's "
                        "uploads, read-all (a token of its own, for the sponsor) every site's")
    g.add_argument("--revoke-token", metavar="ID_OR_SITE", help="revoke a token (or all of a site's), exit")
    g.add_argument("--list-tokens", action="store_true", help="list tokens (never their values), exit")
    g = p.add_argument_group("forwarding")
    g.add_argument("--forward-url", help="upstream DICOMweb base to forward every stored instance to")
    g.add_argument("--forward-token-file", type=Path, help="file holding the upstream's bearer token")
    g.add_argument("--forward-ca", type=Path, help="CA file for the upstream's certificate")
    g.add_argument("--forward-batch", type=int, default=16, help="instances per forwarding request")
    g.add_argument("--forward-backoff", type=float, default=2.0, help="first retry delay, seconds")
    g.add_argument("--forward-backoff-max", type=float, default=300.0, help="longest retry delay, seconds")
    g = p.add_argument_group("limits")
    g.add_argument("--max-request-size", type=size, default=size("8G"))
    g.add_argument("--max-instance-size", type=size, default=size("1G"))
    g.add_argument("--max-instances", type=int, default=5000, help="parts per request")
    g.add_argument("--max-header-size", type=size, default=size("16K"), help="request line + headers")
    g.add_argument("--read-timeout", type=float, default=30.0, help="seconds a body may stall")
    g.add_argument("--header-timeout", type=float, default=15.0, help="seconds to send request headers")
    g.add_argument("--min-rate", type=size, default=256, help="bytes/s a body must average (after the grace)")
    g.add_argument("--min-rate-grace", type=float, default=30.0, help="seconds before --min-rate applies")
    g.add_argument("--handshake-timeout", type=float, default=10.0, help="seconds to complete a TLS handshake")
    g.add_argument("--max-connections", type=int, default=512,
                   help="open connections; at the cap the oldest idle one is closed (default 512)")
    g.add_argument("--max-connections-per-client", type=int, default=64, help="the same, per client address")
    g.add_argument("--max-inflated-size", type=size, default=size("256M"),
                   help="largest size a deflated instance may inflate to (default 256M)")
    g.add_argument("--max-inflate-ratio", type=int, default=100, help="largest inflated/deflated ratio")
    g.add_argument("--worker-memory", type=size, default=size("4G"),
                   help="address space of each verification worker (default 4G)")
    g.add_argument("--min-free-space", type=size, default=size("256M"))
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--benchmark-sink", action="store_true", help=argparse.SUPPRESS)


def default_store() -> Path:
    """A per-user data folder: never the current directory, where a checkout would pick up the TLS private key,
    the tokens and received images."""
    home = Path.home()
    mac = home / "Library" / "Application Support"
    if os.environ.get("LOCALAPPDATA"):  # Windows sets it for every user
        base = Path(os.environ["LOCALAPPDATA"])
    elif mac.is_dir() and not os.environ.get("XDG_DATA_HOME"):
        base = mac
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "py-deid" / "store"


def _checkout_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _site(args) -> Path | None:
    if args.no_site:
        return None
    if args.site is not None:
        return args.site if args.site.is_dir() else _missing(args.site)
    root = _checkout_root()
    dist = root / "web" / "dist"
    if dist.is_dir():
        return dist
    builder = root / "build_wasm.py"
    if builder.is_file() and not args.no_build:
        print(f"web app not built; running {builder.name} (best effort) ...", flush=True)
        result = subprocess.run([sys.executable, str(builder)], cwd=root)
        if result.returncode == 0 and dist.is_dir():
            return dist
        print(f"{builder.name} failed (exit {result.returncode}); serving DICOMweb only", flush=True)
    return None


def _missing(path: Path) -> None:
    print(f"site folder {path} does not exist; serving DICOMweb only", flush=True)
    return None


def _tokens_actions(args, token_path: Path) -> int | None:
    from . import tokens

    if args.new_token:
        try:
            token, entry = tokens.add(token_path, args.new_token, tuple(args.scope or ("store",)))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(f"token for site {entry['site']} (id {entry['id']}, scopes {','.join(entry['scopes'])}):")
        print(token)
        print(f"(shown once; only its SHA-256 is kept in {token_path})")
        return EXIT_OK
    if args.revoke_token:
        n = tokens.revoke(token_path, args.revoke_token)
        print(f"revoked {n} token(s)")
        return EXIT_OK if n else EXIT_FAIL
    if args.list_tokens:
        for e in tokens.read_file(token_path):
            state = f"revoked {e['revoked']}" if e.get("revoked") else "active"
            print(f"{e['id']}  site={e['site']}  scopes={','.join(e.get('scopes', []))}  created={e['created']}  {state}")
        return EXIT_OK
    return None


def _cli_tokens(values: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        site, sep, token = v.partition(":")
        if not sep or not site or not token or " " in site:
            site, token = "cli", v
        out.append((site, token))
    return tuple(out)


class UsageError(ValueError):
    pass


def _settings(args):
    """(options, forwarding, limits, origins) from the arguments; raises UsageError."""
    from ..inflate import InflateLimits
    from .config import Forwarding, Limits
    from .cors import normalize_origin
    from .server import is_loopback

    if args.http and not is_loopback(args.host):
        raise UsageError("--http is allowed only on a loopback address (127.0.0.1, ::1, localhost)")
    if (args.cert_file is None) != (args.key_file is None):
        raise UsageError("--cert-file and --key-file go together")
    try:
        options = Options.from_names(args.option)
        for origin in args.cors_origin:
            normalize_origin(origin)
        token = args.forward_token_file.read_text("utf-8").strip() if args.forward_token_file else None
    except (OptionError, ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    forwarding = None
    if args.forward_url:
        forwarding = Forwarding(url=args.forward_url, token=token,
                                verify=str(args.forward_ca) if args.forward_ca else True,
                                batch_instances=max(1, args.forward_batch), backoff=args.forward_backoff,
                                backoff_max=args.forward_backoff_max)
    limits = Limits(max_request_bytes=args.max_request_size, max_instance_bytes=args.max_instance_size,
                    max_instances=args.max_instances, max_header_bytes=args.max_header_size,
                    read_timeout=args.read_timeout, header_timeout=args.header_timeout,
                    handshake_timeout=args.handshake_timeout, max_connections=max(1, args.max_connections),
                    max_connections_per_client=max(1, args.max_connections_per_client),
                    min_free_bytes=args.min_free_space, min_rate=args.min_rate, min_rate_grace=args.min_rate_grace,
                    inflate=InflateLimits(max_size=args.max_inflated_size, max_ratio=max(1, args.max_inflate_ratio)),
                    worker_memory=args.worker_memory)
    return options, forwarding, limits, tuple(args.cors_origin)


def _tls(args, store: Path) -> tuple[Path | None, Path | None, str]:
    if args.http:
        return None, None, "plain HTTP (loopback only)"
    if args.cert_file:
        return args.cert_file, args.key_file, f"certificate {args.cert_file}"
    from . import tls

    cert = tls.ensure(store / "tls", tuple(args.tls_name))
    return cert.cert, cert.key, (f"{'created' if cert.created else 'using'} certificate {cert.cert}; "
                                 f"trust the CA in {cert.ca}")


def run(args) -> int:
    try:
        check_available()
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAIL
    from . import tokens
    from .config import ReceiverConfig
    from .server import bind, configure_logging, is_loopback, serve

    store: Path = (args.store or default_store()).resolve()
    token_path = (args.token_file or store / "tokens.json").resolve()
    done = _tokens_actions(args, token_path)
    if done is not None:
        return done
    try:
        options, forwarding, limits, origins = _settings(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port} ({e.strerror})", file=sys.stderr)
        return EXIT_FAIL
    loopback = is_loopback(args.host)
    shown = "localhost" if loopback or args.host in ("0.0.0.0", "::") else args.host
    host = f"[{shown}]" if ":" in shown else shown
    origin = f"{'http' if args.http else 'https'}://{host}:{sock.getsockname()[1]}"
    store.mkdir(parents=True, exist_ok=True, mode=0o700)  # instances, tokens and the TLS key: the owner's only
    cfg = ReceiverConfig(store=store, options=options, limits=limits, forwarding=forwarding,
                         cli_tokens=_cli_tokens(args.token), token_file=token_path, site_dir=_site(args),
                         cors_origins=origins, public_url=args.public_url or (origin if loopback else None),
                         benchmark_sink=args.benchmark_sink, verify_workers=max(0, args.verify_workers),
                         review=args.review)
    configure_logging(args.log_level)
    from .app import Receiver
    from .signing import WELL_KNOWN
    from .static import SiteError

    try:
        receiver = Receiver(cfg)
    except SiteError as e:
        sock.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAIL
    new_token = None
    if not cfg.cli_tokens and receiver.tokens.active_count() == 0:
        new_token, _ = tokens.add(token_path, "local", ("store", "read"))
    certfile, keyfile, tls_note = _tls(args, store)
    lines = [
        "py-deid serve",
        f"  page:     {origin}/" + ("" if cfg.site_dir else "  (no web app: DICOMweb only)"),
        f"  DICOMweb: {origin}/dicomweb",
        f"  store:    {store}",
        f"  review:   {args.review} (--review)",
        f"  TLS:      {tls_note}",
        f"  signing:  certificates signed with Ed25519 key {receiver.signer.key_id} "
        f"({'created' if receiver.signer.created else 'kept'} in {receiver.signer.path})",
        f"            public key: {origin}{WELL_KNOWN}",
    ]
    if new_token:
        lines.append(f"  token:    {new_token}")
        lines.append(f"            (site 'local'; shown once, only its hash is kept in {token_path})")
    else:
        lines.append(f"  tokens:   {receiver.tokens.active_count()} active ({len(cfg.cli_tokens)} from --token, "
                     f"the others in {token_path})")
    if not loopback and not args.public_url:
        lines.append("  note:     listening beyond loopback; set --public-url to the address clients use")
    print("\n".join(lines), flush=True)
    try:
        serve(receiver.build(), sock, limits, certfile=certfile, keyfile=keyfile, log_level=args.log_level)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it handled; the shutdown was orderly
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: `python -m py_deid.receiver.cli` is `py-deid serve`."""
    parser = argparse.ArgumentParser(prog="py-deid serve")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
