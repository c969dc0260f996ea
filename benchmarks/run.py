"""Benchmarks: how the workbook's time and memory grow with the size of the extract.

    python benchmarks/run.py                    # 10,000, 100,000 and 1,000,000 referrals
    python benchmarks/run.py --sizes 10000 --repeats 1   # a quick look

Writes the table to benchmarks/README.md (between the markers) and the raw figures
to benchmarks/_runs/results.json. Figures are medians of the repeats; ratios compare
runs made in the same session, since shared machines are noisy. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "_runs"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "sample_data"))


def sh(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - start, proc


def make_service(rows: int) -> Path:
    """A synthetic extract of this size, with a config pointing at it."""
    import generate

    folder = RUNS / f"n{rows}"
    config = folder / "service.yml"
    if config.is_file():
        return config
    folder.mkdir(parents=True, exist_ok=True)
    areas, extract = generate.build(rows, seed=rows)
    extract.to_csv(folder / "extract.csv", index=False)
    generate.write_reference(areas, folder / "reference")
    raw = yaml.safe_load((ROOT / "sample_data" / "sample_service.yml").read_text())
    raw["service"]["name"] = f"Benchmark service {rows:,}"
    raw["extract"]["path"] = "extract.csv"
    raw["readability"] = {k: str(ROOT / "sample_data" / v) for k, v in raw["readability"].items()}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


PREPARE = """
import json, resource, sys, time
from equity_helpers.config import load_config
from equity_helpers.extract import prepare, write_prepared
start = time.perf_counter()
p = prepare(load_config(sys.argv[1]))
write_prepared(p, sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_prepare(config: Path, repeats: int) -> dict:
    times, peaks = [], []
    for _ in range(repeats):
        _, proc = sh(
            [sys.executable, "-c", PREPARE, str(config), str(config.parent / "prepared.parquet")]
        )
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        times.append(out["seconds"])
        peaks.append(out["peak_mb"])
    return {"prepare_s": statistics.median(times), "prepare_peak_mb": max(peaks)}


def bench_workbook(config: Path, repeats: int) -> dict:
    times, reruns, steps, failed = [], [], {}, []
    for _ in range(repeats):
        out = config.parent / "workbooks"
        shutil.rmtree(out, ignore_errors=True)
        t, proc = sh(
            [str(BIN / "equity-workbook"), "run", "--config", str(config), "--out", str(out)],
            cwd=ROOT,
        )
        if proc.returncode == 1:  # a step failed: record it, keep measuring
            failed.extend(re.findall(r"The step '([^']+)' stopped", proc.stdout))
        elif proc.returncode != 0:
            raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
        times.append(t)
        for line in proc.stdout.splitlines():
            m = re.match(r"\[\d+/\d+\] (.+): ok in ([\d.]+) s", line)
            if m:
                steps.setdefault(m.group(1), []).append(float(m.group(2)))
        t2, proc2 = sh(
            [str(BIN / "equity-workbook"), "run", "--config", str(config), "--out", str(out)],
            cwd=ROOT,
        )
        if "reused" not in proc2.stdout:
            raise SystemExit("the unchanged re-run was not reused:\n" + proc2.stdout[-2000:])
        reruns.append(t2)
    return {
        "workbook_s": statistics.median(times),
        "rerun_s": statistics.median(reruns),
        "steps_s": {k: statistics.median(v) for k, v in steps.items()},
        "failed_steps": sorted(set(failed)),
    }


def bench_sequential(config: Path) -> float:
    """The same notebooks one after another with plain papermill (the baseline for parallelism)."""
    import jupytext
    import nbformat

    folder = config.parent / "sequential"
    folder.mkdir(exist_ok=True)
    prepared = config.parent / "prepared.parquet"
    total = 0.0
    for md in sorted((ROOT / "notebooks").glob("*.md")):
        if md.stem == "training-exercises":
            continue
        nb = folder / f"{md.stem}.ipynb"
        nbformat.write(jupytext.read(md), nb)
        t, proc = sh(
            [
                str(BIN / "papermill"),
                str(nb),
                str(folder / f"{md.stem}.out.ipynb"),
                "-p",
                "config_path",
                str(config),
                "-p",
                "prepared_path",
                str(prepared),
            ],
            cwd=ROOT,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        total += t
    return total


def bench_parallel_notebooks(config: Path) -> float:
    """Only the notebook stage of a workbook run, in parallel, to compare with sequential."""
    from equity_helpers.config import load_config
    from equity_helpers.service import input_fingerprint
    from equity_helpers.workbook import run_steps

    cfg = load_config(config)
    work = config.parent / "parallel"
    shutil.rmtree(work, ignore_errors=True)
    cache = work / "cache"
    start = time.perf_counter()
    run_steps(
        cfg,
        config.parent / "prepared.parquet",
        work,
        jobs=os.cpu_count() or 1,
        cache=cache,
        fingerprint=input_fingerprint(cfg) + str(time.time()),
        progress=lambda m: None,
        steps=[s for s in _notebook_names() if s != "training-exercises"],
    )
    return time.perf_counter() - start


def _notebook_names() -> list[str]:
    from equity_helpers.notebooks import NOTEBOOKS

    return [n.name for n in NOTEBOOKS]


def bench_book(repeats: int) -> dict:
    out = RUNS / "book"
    clean, edits, executed = [], [], []
    page = ROOT / "book" / "conclusion.md"
    original = page.read_text()
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        t, proc = sh(
            [str(BIN / "jupyter-book"), "build", str(ROOT), "--path-output", str(out)], cwd=ROOT
        )
        clean.append(t)
        try:
            page.write_text(original + "\nThis line was added by the benchmark.\n")
            t2, proc2 = sh(
                [str(BIN / "jupyter-book"), "build", str(ROOT), "--path-output", str(out)], cwd=ROOT
            )
        finally:
            page.write_text(original)
        edits.append(t2)
        executed.append(len(re.findall(r"Executing notebook", proc2.stdout + proc2.stderr)))
    return {
        "book_clean_s": statistics.median(clean),
        "book_edit_s": statistics.median(edits),
        "book_edit_notebooks_executed": max(executed),
    }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB memory, Python {platform.python_version()}, {platform.system()}"


def write_readme(results: dict) -> None:
    rows = [
        "| Referrals | Prepare (s) | Prepare peak memory (MB) | Whole workbook, HTML included (s) | "
        "Unchanged re-run (s) | Slowest step (s) |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for n, r in sorted(results["sizes"].items(), key=lambda kv: int(kv[0])):
        slow = max(r["steps_s"].items(), key=lambda kv: kv[1]) if r["steps_s"] else ("-", 0)
        rows.append(
            f"| {int(n):,} | {r['prepare_s']:.1f} | {r['prepare_peak_mb']:,.0f} | {r['workbook_s']:.1f} | "
            f"{r['rerun_s']:.1f} | {slow[0]} ({slow[1]:.1f}) |"
        )
    extra = []
    sizes = results["sizes"]
    for n, r in sizes.items():
        if r.get("failed_steps"):
            extra.append(
                f"- At {int(n):,} referrals these steps failed: {', '.join(r['failed_steps'])}."
            )
    if "100000" in sizes and "1000000" in sizes:
        ratio = sizes["1000000"]["workbook_s"] / sizes["100000"]["workbook_s"]
        extra.append(f"- Workbook time at 1,000,000 ÷ at 100,000 referrals: **{ratio:.2f}**.")
    if "parallel_ratio" in results:
        extra.append(
            f"- Notebooks in parallel ÷ the same notebooks one after another with plain papermill "
            f"({results['ratio_rows']:,} referrals): **{results['parallel_ratio']:.2f}** "
            f"({results['parallel_s']:.1f} s ÷ {results['sequential_s']:.1f} s)."
        )
    if "book" in results:
        b = results["book"]
        extra.append(
            f"- Book build from clean: **{b['book_clean_s']:.0f} s**; after a one-line prose change: "
            f"**{b['book_edit_s']:.0f} s**, with **{b['book_edit_notebooks_executed']}** notebooks re-executed."
        )
    table = "\n".join(rows + [""] + extra)
    text = (ROOT / "benchmarks" / "README.md").read_text()
    block = (
        f"<!-- results -->\nMeasured {results['date']} on {results['machine']}; "
        f"medians of {results['repeats']} runs (at most 2 at 1,000,000 referrals).\n\n{table}\n<!-- /results -->"
    )
    text = re.sub(r"<!-- results -->.*<!-- /results -->", block, text, flags=re.S)
    (ROOT / "benchmarks" / "README.md").write_text(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-book", action="store_true")
    args = ap.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "repeats": args.repeats,
        "sizes": {},
    }
    for n in args.sizes:
        print(f"Benchmark at {n:,} referrals", flush=True)
        config = make_service(n)
        repeats = args.repeats if n < 1_000_000 else max(1, min(args.repeats, 2))
        r = bench_prepare(config, repeats)
        r |= bench_workbook(config, repeats)
        results["sizes"][str(n)] = r
        print(json.dumps(r, indent=1), flush=True)
    ratio_n = 100_000 if 100_000 in args.sizes else args.sizes[0]
    config = make_service(ratio_n)
    seq = bench_sequential(config)
    par = bench_parallel_notebooks(config)
    results |= {
        "sequential_s": seq,
        "parallel_s": par,
        "parallel_ratio": par / seq,
        "ratio_rows": ratio_n,
    }
    if not args.skip_book:
        results["book"] = bench_book(max(1, min(args.repeats, 2)))
    (RUNS / "results.json").write_text(json.dumps(results, indent=2))
    write_readme(results)
    print(json.dumps({k: v for k, v in results.items() if k != "sizes"}, indent=1))


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()
