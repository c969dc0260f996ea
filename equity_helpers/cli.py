"""The `equity-workbook` command: a thin wrapper over the library.

    equity-workbook run --config my_service.yml --out workbooks/
    equity-workbook run --config a.yml --config b.yml --jobs 2
    equity-workbook check my_service.yml
    equity-workbook prepare --config my_service.yml
    equity-workbook init extract.csv --out my_service.yml
    equity-workbook init extract.xlsx --sheet Referrals --appointments appointments.csv
    equity-workbook reference download --dest reference/
    equity-workbook messages

A data or config problem prints a plain message and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import CATALOGUE, PlaybookError
from .lazy import skip_iri_checker


def _configs(values: list[str]) -> list[Path]:
    out = []
    for v in values:
        p = Path(v)
        out.extend(sorted(p.glob("*.yml")) + sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def cmd_run(args) -> int:
    from .workbook import run_many

    configs = _configs(args.config)
    build = run_many
    if args.scheduler:  # the same work, on a Dask cluster
        from functools import partial

        from .workbook.cluster import run_on_cluster

        build = partial(run_on_cluster, scheduler=args.scheduler)
    results = build(
        configs,
        args.out,
        jobs=args.jobs,
        baseline=args.baseline,
        pdf=args.pdf,
        force=args.force,
        steps=args.steps.split(",") if args.steps else None,
        notebook_dir=args.notebooks,
        progress=lambda m: print(m, flush=True),
    )
    status = 0
    for r in results:
        print()
        if r.error:
            print(f"{r.service}: the workbook was not built.\n{r.error}")
            status = 2
            continue
        word = (
            "reused (nothing changed)"
            if r.reused
            else f"built in {r.seconds:.0f} s"
            if r.seconds
            else "built"
        )
        print(f"{r.service}: workbook {word}.")
        print(f"  Open: {r.html_index}")
        if r.pdf:
            print(f"  PDF: {r.pdf}")
        if r.pdf_error:
            status = 2
            print("  The PDF was not printed:\n    " + r.pdf_error.replace("\n", "\n    "))
        if r.failures:
            status = max(status, 1)
            print(f"  {len(r.failures)} step(s) failed:")
            for s in r.failures:
                print("  - " + s.message.replace("\n", "\n    "))
    if len(results) > 1:
        print(f"\nIndex of all workbooks: {Path(args.out).resolve() / 'index.html'}")
    return status


def cmd_check(args) -> int:
    from .starter import check

    problems, report = check(args.config)
    if not problems:
        from .config import load_config
        from .errors import render

        # Not a problem (the run goes ahead), but the person must know before sharing.
        relaxed = load_config(args.config).disclosure.warning()
        if relaxed:
            report += "\n\n" + render("CFG008", detail=relaxed)
    print(report)
    return 2 if problems else 0


def cmd_prepare(args) -> int:
    import tempfile

    from .config import load_config
    from .extract import report_text
    from .preparation import prepare_to_file, private_cache_folder

    cfg = load_config(args.config)
    # Prepared as a workbook run prepares it: a big CSV file a batch of rows at a time.
    if args.out:
        _, meta = prepare_to_file(cfg, args.out)
    else:  # only the report is wanted: the prepared rows are not kept
        with tempfile.TemporaryDirectory(dir=private_cache_folder()) as folder:
            _, meta = prepare_to_file(cfg, Path(folder) / "prepared.parquet")
    print(report_text(meta))
    if args.out:
        print(f"\nPrepared data written to {args.out}")
    return 0


def cmd_init(args) -> int:
    from .starter import starter_config_path, write_starter_config

    asked = starter_config_path(args.extract, args.out)
    notes: list[str] = []
    path, todos = write_starter_config(
        args.extract,
        args.out,
        force=args.force,
        sheet=args.sheet,
        appointments=args.appointments,
        notes=notes,
    )
    for note in notes:
        print(note)
    if path != asked:
        print(
            f"A config already exists at {asked}; it was left as it is. "
            "Use --force to overwrite it."
        )
    print(f"Wrote a starter config to {path}")
    if todos:
        print(
            f"{len(todos)} settings still say TODO: fill them in, then run "
            f"'equity-workbook check {path}'."
        )
    return 0


def cmd_reference(args) -> int:
    from .reference import download_reference

    done = download_reference(args.dest)
    for key, path in done.items():
        print(f"{key}: {path}")
    return 0


def cmd_messages(args) -> int:
    for code, m in CATALOGUE.items():
        print(f"{code} ({m.kind}) {m.title}\n  {m.what_to_do}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="equity-workbook",
        description="Run the health-inequalities playbook on a service's extract.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="show details as the run goes")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="build a service's workbook")
    r.add_argument(
        "--config",
        action="append",
        required=True,
        help="a service config (repeat, or give a folder of configs)",
    )
    r.add_argument("--out", default="workbooks", help="output folder (default: workbooks)")
    r.add_argument("--jobs", type=int, default=None, help="notebooks run at once (default: cores)")
    r.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help=(
            "build the workbooks on a Dask cluster (its scheduler's address, tcp://host:8786),"
            " or 'local' for a cluster of this machine's cores, started for the run"
        ),
    )
    r.add_argument("--baseline", help="folder of an earlier workbook to compare with")
    r.add_argument("--pdf", action="store_true", help="also print one PDF with headless Chromium")
    r.add_argument("--force", action="store_true", help="run again even if nothing changed")
    r.add_argument(
        "--steps", help="only these steps, comma separated (for example pathway,evaluation)"
    )
    r.add_argument("--notebooks", help="run a customised copy of the notebooks from this folder")
    r.set_defaults(func=cmd_run)
    c = sub.add_parser("check", help="list everything that stops a config from running")
    c.add_argument("config")
    c.set_defaults(func=cmd_check)
    pr = sub.add_parser("prepare", help="validate the extract and show the data-quality report")
    pr.add_argument("--config", required=True)
    pr.add_argument("--out", help="also write the prepared Parquet file here")
    pr.set_defaults(func=cmd_prepare)
    i = sub.add_parser("init", help="write a starter config for an extract")
    i.add_argument("extract")
    i.add_argument(
        "--out", default=None, help="where to write the config (default: beside the extract)"
    )
    i.add_argument("--force", action="store_true", help="overwrite a config already at that path")
    i.add_argument("--sheet", help="the sheet of an Excel workbook that holds the referrals")
    i.add_argument(
        "--appointments", help="a file of appointments, one row per appointment (optional)"
    )
    i.set_defaults(func=cmd_init)
    ref = sub.add_parser("reference", help="reference data")
    refsub = ref.add_subparsers(dest="action", required=True)
    d = refsub.add_parser("download", help="download the official deprivation and census files")
    d.add_argument("--dest", default="reference")
    d.set_defaults(func=cmd_reference)
    m = sub.add_parser("messages", help="list every error and warning the playbook can give")
    m.set_defaults(func=cmd_messages)
    return p


def main(argv: list[str] | None = None) -> int:
    skip_iri_checker()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _stopped()
    except PlaybookError as exc:
        if exc.code == "RUN004":  # the run was stopped with Ctrl-C
            return _stopped()
        print(f"\n{exc}", file=sys.stderr)
        return 2


def _stopped() -> int:
    """Ctrl-C: one plain line, and the status a shell expects of an interrupted command."""
    import signal

    try:  # a second Ctrl-C cannot cut the tidy-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
    m = CATALOGUE["RUN004"]
    print(f"{m.title} [RUN004]: no workbook was published. {m.what_to_do}", file=sys.stderr)
    return 130


if __name__ == "__main__":
    sys.exit(main())
