"""`py-deid`: deidentify, verify, explain, serve (docs/cli.md describes each command).

Exit status: 0 all files done, 1 some files failed (or verify found something), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

from . import __version__
from .options import OPTION_NAMES, OptionError, Options, Settings, Trial
from .pseudonyms import KeyError_, random_key

TRIAL_FLAGS = {
    "subject_id": "Clinical Trial Subject ID; also becomes Patient ID and Patient's Name",
    "sponsor_name": "Clinical Trial Sponsor Name",
    "protocol_id": "Clinical Trial Protocol ID",
    "protocol_name": "Clinical Trial Protocol Name",
    "site_id": "Clinical Trial Site ID",
    "site_name": "Clinical Trial Site Name",
    "time_point_id": "Clinical Trial Time Point ID",
    "time_point_description": "Clinical Trial Time Point Description",
    "coordinating_center_name": "Clinical Trial Coordinating Center Name",
}


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--option", action="append", default=[], metavar="NAME", choices=OPTION_NAMES,
                   help="a PS3.15 E.3 option (repeatable): " + ", ".join(OPTION_NAMES))


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the command it will parse, the receiver's own arguments are added only
    for its commands (importing the receiver's command line took tens of ms of every de-identification's start)."""
    ap = argparse.ArgumentParser(prog="py-deid", description="De-identify DICOM (PS3.15 Annex E, burned-in text).")
    ap.add_argument("--version", action="version", version=f"py_deid {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("deidentify", help="de-identify files and folders into OUT/<study>/<series>/<sop>.dcm")
    d.add_argument("inputs", nargs="+", metavar="IN")
    d.add_argument("-o", "--out", required=True, type=Path, metavar="OUT")
    _add_options(d)
    d.add_argument("--key-file", type=Path, help="secret for keyed pseudonyms (UIDs, IDs, date shifts), or a site key "
                   "file exported by the web page (its passphrase is asked for)")
    d.add_argument("--key-passphrase-file", type=Path, help="file holding the passphrase of a site key file")
    for name, text in TRIAL_FLAGS.items():
        d.add_argument("--" + name.replace("_", "-"), default="", help=text)
    d.add_argument("--pixels", choices=("auto", "all", "off"), default="auto",
                   help="burned-in text: clean where likely (auto), always (all), never (off)")
    d.add_argument("--text", choices=("strict", "phi", "all"), default="strict",
                   help="which OCR text to mask: all but technical (strict), PHI only (phi), every word (all)")
    d.add_argument("--report", type=Path, metavar="FILE.json", help="write the site's JSON report here")
    d.add_argument("--jobs", type=int, default=1, metavar="N", help="processes to use (default 1)")
    d.add_argument("--ocr-threads", type=int, default=1, metavar="N",
                   help="OCR engines per process, reading parts of one image at once (default 1)")
    d.add_argument("--worker-memory", type=int, default=None, metavar="MB",
                   help="pixel work: a worker process whose resident size after a file is above MB is replaced by "
                        "a fresh one (default 85; 0: never)")
    d.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask distributed cluster: the scheduler's address (tcp://host:8786) or its "
                        "scheduler file; workers must see IN and OUT at the same paths")

    v = sub.add_parser("verify", help="residual-PHI check of de-identified files; exit 1 if anything is found")
    v.add_argument("inputs", nargs="+", metavar="IN")
    _add_options(v)
    v.add_argument("--against", nargs="+", default=[], metavar="ORIG",
                   help="the original files: also look for their UIDs and patient terms")
    v.add_argument("--no-ocr", action="store_true", help="skip the independent OCR pass over pixels")
    v.add_argument("--text", choices=("strict", "phi", "all"), default="strict",
                   help="what pixel text counts as a finding (as for deidentify)")
    v.add_argument("--json", action="store_true", help="print findings as JSON lines")
    v.add_argument("--subject-id", action="append", default=[], metavar="ID",
                   help="a trial subject ID that Patient ID and Patient's Name may hold (repeatable)")
    v.add_argument("--subject-id-pattern", metavar="REGEX",
                   help="a regular expression every trial subject ID matches (e.g. 'S[0-9]{2}-[0-9]{4}')")

    e = sub.add_parser("explain", help="print the resolved action for every attribute under the options")
    _add_options(e)

    s = sub.add_parser("serve", help="run the receiving endpoint and the web app on one HTTPS origin")
    c = sub.add_parser("certificate", help="check a certificate the receiver signed")
    if command in OWN_COMMANDS:
        return ap
    try:
        from .receiver import cli as receiver_cli
    except ImportError:
        receiver_cli = None
    if receiver_cli is not None:
        receiver_cli.add_arguments(s)
    s.set_defaults(receiver=receiver_cli)
    from .receiver import certificate_cli
    certificate_cli.add_arguments(c)
    return ap


OWN_COMMANDS = ("deidentify", "verify", "explain")  # the commands that parse without the receiver's arguments


def _command(argv: list[str]) -> str | None:
    """The command a command line names: its first word that is not an option (py-deid's own options take
    no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def explain_text(options: Options) -> str:
    from . import policy
    rows = policy.explain(options)
    lines = [f"Actions under: {', '.join(options.names) or 'Basic Profile only'}", "",
             "| Tag | Attribute | Basic | Action | Why |", "|---|---|---|---|---|"]
    for tag, name, basic, action, why in rows:
        lines.append(f"| {tag} | {name} | {basic} | {action} | {why} |")
    return "\n".join(lines) + "\n"


def cmd_explain(args) -> int:
    sys.stdout.write(explain_text(Options.from_names(args.option)))
    return 0


def cmd_deidentify(args) -> int:
    trial = Trial(**{name: getattr(args, name) for name in TRIAL_FLAGS})
    settings = Settings(options=Options.from_names(args.option), trial=trial, pixels=args.pixels, text=args.text)
    if args.key_file:
        try:
            from . import site_key

            key = site_key.read_key(args.key_file, args.key_passphrase_file)
        except OSError as e:
            raise OptionError(f"key file cannot be read ({e.strerror})") from None
        key_source = "key file"
    else:
        key = random_key()
        key_source = "random for this run: pseudonyms will not match other runs"
        print("py-deid: no --key-file; pseudonyms are random for this run", file=sys.stderr)
    if args.jobs < 1:
        raise OptionError("--jobs must be at least 1")
    if not 1 <= args.ocr_threads <= 16:
        raise OptionError("--ocr-threads must be from 1 to 16")
    if args.worker_memory is not None and args.worker_memory < 0:
        raise OptionError("--worker-memory must be 0 (never replaced) or more")
    if args.dask and args.jobs != 1:
        raise OptionError("--jobs and --dask exclude each other: the cluster's workers are the jobs")
    if settings.pixels == "off":
        _load_without_pixel_libraries()
    else:  # pixels are decoded, but pydicom's test-data downloader needs no HTTP library (0.05-0.1 s)
        from .hosts import native_plugins
        from .hosts.native import one_array_thread

        one_array_thread()  # before pydicom loads numpy: no BLAS thread per core (py_deid.hosts.native)
        # Pillow and the codec packages only when a compressed frame needs them (hosts.native_plugins)
        _load_without_pixel_libraries(("requests", "tqdm") + native_plugins.DEFERRED)
    from . import batch
    from . import report as _report
    client = _dask_client(args.dask) if args.dask else None
    args.out.mkdir(parents=True, exist_ok=True)
    job = batch.Job(out=args.out, settings=settings, key=key, jobs=args.jobs, ocr_threads=args.ocr_threads,
                    large_blocks_back=settings.pixels != "off",
                    **({} if args.worker_memory is None else {"worker_limit_mb": args.worker_memory}))
    items = batch.iter_inputs(args.inputs, exclude=args.out)
    head = _report.header(settings, key_source=key_source)

    def run(fh) -> dict:
        writer = _report.ReportWriter(fh, head)
        if client is None:
            return batch.run(items, job, writer, progress=batch.default_progress())
        from . import distributed
        with client:
            return distributed.run(items, job, writer, client, progress=batch.default_progress())

    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=args.report.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            summary = run(fh)
        os.replace(tmp, args.report)
    else:
        with open(os.devnull, "w", encoding="utf-8") as fh:
            summary = run(fh)
    counts = summary["summary"]
    print(f"py-deid: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed", file=sys.stderr)
    global _ENDED
    _ENDED = client is None  # see run_and_exit
    return 1 if counts["failed"] else 0


# What pydicom loads when it finds it installed, though only pixel work uses it.
PIXEL_LIBRARIES = ("numpy", "PIL", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls", "gdcm", "requests",
                   "tqdm")  # (requests, tqdm: pydicom's test-file download, never used here)


def _load_without_pixel_libraries(libraries: tuple[str, ...] = PIXEL_LIBRARIES) -> None:
    """With --pixels off nothing decodes a pixel: pydicom is loaded as in the browser, without numpy, Pillow
    and the codec plugins (0.15-0.2 s and ~25 MB less per process; the outputs are the same bytes)."""
    if "pydicom" in sys.modules:
        return  # already loaded (py_deid used as a library): nothing to gain
    blocked = [name for name in libraries if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # an import of it raises ImportError, which pydicom takes as "not installed"
    # pydicom's test-data downloader (urllib, http.client, email) and its examples (thirteen test files looked
    # up) load with it and are never used here: the browser's stand-ins take their place, as in the browser
    # (~60 ms of each command's start-up). Anything that would download raises instead.
    from .hosts import no_downloads, no_examples
    from .hosts.installed_version import while_importing
    sys.modules.setdefault("pydicom.data.download", no_downloads)  # type: ignore[arg-type]
    sys.modules.setdefault("pydicom.examples", no_examples)  # type: ignore[arg-type]
    try:
        with while_importing("pydicom"):  # its version without importlib.metadata (~45 ms): see that module
            import pydicom  # noqa: F401
        from . import batch  # noqa: F401  (and everything the header path imports)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def _dask_client(address: str):
    try:
        from . import distributed
        return distributed.connect(address)
    except ImportError:
        raise OptionError("--dask needs Dask: pip install 'py_deid[dask]'") from None
    except (OSError, TimeoutError) as e:
        raise OptionError(f"cannot reach the Dask scheduler at {address} ({type(e).__name__})") from None


def cmd_verify(args) -> int:
    from .verify_files import verify_files
    if args.subject_id_pattern:
        try:
            re.compile(args.subject_id_pattern)
        except re.error:
            print("py-deid verify: --subject-id-pattern is not a valid regular expression", file=sys.stderr)
            return 2
    findings = verify_files(args.inputs, Options.from_names(args.option), against=args.against,
                            ocr=not args.no_ocr, text=args.text, subject_ids=frozenset(args.subject_id),
                            subject_pattern=args.subject_id_pattern)
    for path, f in findings:
        if args.json:
            print(json.dumps({"file": path, **f.as_dict()}))
        else:
            print(f"{path}: {f.code} at {f.where or '-'}: {f.message}")
    if not args.json:
        print(f"py-deid verify: {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


def cmd_serve(args) -> int:
    if args.receiver is None:
        print("py-deid serve needs the receiver's dependencies: pip install 'py_deid[serve]'", file=sys.stderr)
        return 2
    return args.receiver.run(args)


def cmd_certificate(args) -> int:
    from .receiver import certificate_cli
    return certificate_cli.run(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(_command(argv)).parse_args(argv)
    handlers = {"deidentify": cmd_deidentify, "verify": cmd_verify, "explain": cmd_explain, "serve": cmd_serve,
                "certificate": cmd_certificate}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # third-party warnings quote file values
            return handlers[args.command](args)
    except (OptionError, KeyError_) as e:
        print(f"py-deid: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# Set by `deidentify` once its run has ended without Dask: every output is written, flushed and named, the report
# written and closed, and every thread and worker process of the batch joined (their pools are closed by then).
_ENDED = False


def run_and_exit() -> None:
    """The program (`python -m py_deid`, the `py-deid` script): main(), then the exit. After a `deidentify` run
    that ended (_ENDED) the process ends at once, without the interpreter's teardown: freeing every module and
    object of a process that is ending, ~20-25 ms of CPU after a 1,000-file run (80-300 ms of wall on a loaded
    machine) for nothing left to write. Everything else (other commands, usage errors, an interrupted or failed
    run, a run on Dask, whose client has exit handlers of its own) exits as usual. Never from main(): a caller
    in process (tests, a host) keeps its interpreter."""
    code = main()
    if _ENDED:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run_and_exit()
