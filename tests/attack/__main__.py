"""Attack a built workbook: ``python -m tests.attack <workbook-folder> [--config <service.yml>]``.

With ``--config`` the attacker also reads the service's extract (the truth) and so knows
which groups are small: it then looks for any figure about them and for their free-text
labels. Exits 1 when it finds anything, 0 when it finds nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .attacks import attack_folder
from .truth import truth_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.attack", description=__doc__)
    parser.add_argument("workbook", type=Path, help="a built workbook folder (holds manifest.json)")
    parser.add_argument(
        "--config",
        "--truth",
        type=Path,
        help="the service config the workbook was built from; its extract is the truth",
    )
    args = parser.parse_args(argv)
    if not (args.workbook / "manifest.json").is_file():
        parser.error(f"{args.workbook} has no manifest.json: give a built workbook's folder")
    truth = truth_from_config(args.config) if args.config else None
    report = attack_folder(args.workbook, truth)
    print(report.text())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
