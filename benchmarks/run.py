"""Benchmarks: how long `equity-workbook run` takes, as a user runs it.

    python benchmarks/run.py                       # the sample and 100,000 referrals
    python benchmarks/run.py --sizes 6000 --repeats 1   # a quick look
    python benchmarks/run.py --batch 20            # 20 services, locally and on a cluster
    python benchmarks/run.py --sizes 1000000,10000000   # big extracts

Each figure is the command a user types, `equity-workbook run --config ... --out ... --force`,
into an empty folder (no step reused), timed from outside, with the machine's load average
(`os.getloadavg()`, the last minute) beside it:

- warm: the same command run once before, untimed, so Python's compiled files, Matplotlib's
  font cache and the operating system's file cache are all in place (the project's package is
  compiled first, as `make setup` leaves it);
- install, then cold: the first run after installing, as on a fresh clone. The files git
  lists (tracked, and new files it does not ignore) are copied to a new folder and `make
  setup` is run there with the Python this benchmark runs on: a new `.venv`, `pip install -r
  requirements.txt` (pip compiles the packages it installs), then the setup's first-run work
  (compiling the project's own package, building Matplotlib's font cache). pip's cache is
  used, so the install's time says little about downloading. Matplotlib's, IPython's and
  Jupyter's folders (`MPLCONFIGDIR`, `IPYTHONDIR`, `JUPYTER_CONFIG_DIR`, `JUPYTER_DATA_DIR`)
  are new and empty, for the install and the run, as for someone who has never used them.
  The install is timed on a row of its own; the cold row is the command's first run from the
  new installation. The operating system's file cache is not emptied (the files pip has just
  written are in it, as they are for someone who has just installed). It needs git and make;
  `--no-cold` leaves it out;
- unchanged re-run: the same command without `--force` (the workbook is reused);
- compute only: every step's `run(service)` in one plain Python process, after preparing
  the extract (no notebooks, no HTML): the limit the workbook run could approach;
- prepare only (1,000,000 referrals and more): preparing the extract in a new process.

Each row gives the peak memory too: the largest max RSS of the command and of the
processes it started (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`).
A size of 1,000,000 or more is run once warm (no cold run, no untimed run first); its
extract is the generator's 1,000,000 referrals, repeated with new referral IDs.

The wall time is split into its phases from the times the command prints its progress:
preparing the extract, working out the steps and running the notebooks (one phase: the
workers work each step out just before its notebook), and assembling the HTML.

`--batch N` times N sample-sized services in one command (`run --config <folder>`), locally
and on a 2-worker Dask LocalCluster that the command starts (`--scheduler local`), with CPU seconds and the load around each.
CPU seconds (the command and everything it started) are given too: on a shared machine they
say what the run cost when the wall time is stretched by other work. Every command runs with
this process's environment; when it sets `PYTHONDONTWRITEBYTECODE` (Python then writes no
compiled files, and compiles again in every process any module whose compiled file is
missing or out of date), the figures say so.

Writes the table to benchmarks/README.md (between the markers) and the raw figures to
benchmarks/_runs/results.json. Not part of `make test`.
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
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "benchmarks" / "_runs"
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "sample_data" / "sample_service.yml"
sys.path.insert(0, str(ROOT / "sample_data"))


def make_service(rows: int) -> Path:
    """The sample for 6,000 rows; otherwise a synthetic extract of this size made by the
    sample's generator (never committed), with a config pointing at it."""
    if rows == 6000:
        return SAMPLE
    if rows > BUILD_LIMIT:
        return make_big_service(rows)
    import generate

    folder = RUNS / f"n{rows}"
    config = folder / "service.yml"
    if config.is_file():
        return config
    folder.mkdir(parents=True, exist_ok=True)
    areas, extract = generate.build(rows, seed=rows)
    extract.to_csv(folder / "extract.csv", index=False)
    generate.write_reference(areas, folder / "reference")
    raw = yaml.safe_load(SAMPLE.read_text())
    raw["service"]["name"] = f"Benchmark service {rows:,}"
    raw["extract"]["path"] = "extract.csv"
    raw["readability"] = {k: str(SAMPLE.parent / v) for k, v in raw["readability"].items()}
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


#: Referrals the generator makes in one go; bigger extracts repeat it with new referral IDs.
BUILD_LIMIT = 1_000_000


def make_big_service(rows: int) -> Path:
    """A config and extract of `rows` referrals (a multiple of 1,000,000), made quickly.

    The generator builds 1,000,000 referrals once; a bigger extract repeats that file, each
    copy with its own referral IDs (a prefix per copy), streamed to the CSV a copy at a time,
    so making 10,000,000 referrals needs the memory of one copy.
    """
    folder = RUNS / f"n{rows}"
    config = folder / "service.yml"
    if config.is_file():
        return config
    base = make_service(BUILD_LIMIT)
    if rows == BUILD_LIMIT:
        return base
    copies, extra = divmod(rows, BUILD_LIMIT)
    if extra:
        raise SystemExit(f"{rows:,} is not a multiple of {BUILD_LIMIT:,}")
    folder.mkdir(parents=True, exist_ok=True)
    data = (base.parent / "extract.csv").read_bytes()
    header, _, body = data.partition(b"\n")
    tmp = folder / "extract.csv.tmp"
    with open(tmp, "wb") as fh:
        fh.write(header + b"\n")
        for k in range(copies):
            fh.write(re.sub(rb"(?m)^LC", b"LC%02d-" % k, body))
    tmp.replace(folder / "extract.csv")
    shutil.copytree(base.parent / "reference", folder / "reference", dirs_exist_ok=True)
    raw = yaml.safe_load(base.read_text())
    raw["service"]["name"] = f"Benchmark service {rows:,}"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


#: Runs a command and says the largest memory (max RSS, KB) of it and the processes it
#: started: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a process of its own, so
#: each figure is one command's, not the largest so far in this process.
PEAK_MARK = "@@peak-kb"
PEAK = f"""
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
print("{PEAK_MARK}", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)
sys.exit(code)
"""


def peak_gb(kb: int | None) -> float | None:
    """Kilobytes (as Linux gives max RSS) in GB."""
    return None if kb is None else round(kb * 1024 / 1e9, 2)


PREPARE = """
import sys, tempfile, time
from pathlib import Path
from equity_helpers.config import load_config
from equity_helpers.preparation import prepare_to_file
cfg = load_config(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    prepare_to_file(cfg, Path(tmp) / "prepared.parquet")
    print("prepare_s", time.perf_counter() - start)
"""


def run_script(script: str, config: Path) -> tuple[list[str], dict]:
    """Runs one of the scripts here (`python -c SCRIPT CONFIG`) in a new process: the lines it
    printed, and its wall time, peak memory and the load before and after."""
    load_before = load()
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK, sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - start
    lines = proc.stdout.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith(PEAK_MARK))
    printed = [line for line in lines if not line.startswith(PEAK_MARK)]
    return printed, {
        "wall_s": wall,
        "peak_gb": peak_gb(peak),
        "load_before": load_before,
        "load_after": load(),
    }


def bench_prepare(config: Path) -> dict:
    """Prepare only: the time and peak memory of preparing the extract, in a new process."""
    printed, figures = run_script(PREPARE, config)
    lines = dict(line.split(maxsplit=1) for line in printed if " " in line)
    return {"prepare_s": float(lines["prepare_s"])} | figures


def bench_big(rows: int) -> dict:
    """A big extract: one warm `--force` run, an unchanged re-run, prepare only, compute only.

    (No cold run and no untimed run first: at this size the fixed costs they show are lost
    in the time spent on the data.)
    """
    config = make_service(rows)
    figures = {"rows": rows, "prepare": bench_prepare(config)}
    with tempfile.TemporaryDirectory(prefix="equity-bench-") as tmp:
        figures["warm"] = [run_command(config, Path(tmp) / "warm")]
        figures["rerun"] = run_command(config, Path(tmp) / "warm", force=False)
    figures["compute"] = bench_compute(config)
    return figures


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_command(
    config: Path, out: Path, *, force: bool = True, env=None, bin: Path = BIN, cwd: Path = ROOT
) -> dict:
    """Run `equity-workbook run` once (from the installation whose scripts are in `bin`);
    wall and CPU seconds, phases, and the load around it."""
    from equity_helpers.extract import ROWS_READ

    cmd = [str(bin / "equity-workbook"), "run", "--config", str(config), "--out", str(out)]
    cmd += ["--force"] if force else []
    cmd = [sys.executable, "-c", PEAK, *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = load()
    start = time.perf_counter()
    marks = {}
    steps = []
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    )
    output = []
    peak = None
    for line in proc.stdout:
        now = time.perf_counter() - start
        if line.startswith(PEAK_MARK):
            peak = int(line.split()[1])
            continue
        output.append(line)
        if line.startswith(ROWS_READ):  # the progress line with the row account
            marks["prepared"] = now
        m = re.match(r"\[(\d+)/(\d+)\] (.*): (\w+)(?: in ([\d.]+) s)?", line)
        if m:
            marks["steps_done"] = now
            steps.append({"step": m.group(3), "status": m.group(4), "s": float(m.group(5) or 0)})
        if line.startswith("Worked out the steps"):
            marks["worked_out"] = now
        if line.startswith("Assembling"):
            marks["assembling"] = now
    code = proc.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise SystemExit(f"the run failed ({code}):\n" + "".join(output[-30:]))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {"wall_s": wall, "cpu_s": cpu, "load_before": load_before, "load_after": load()}
    result["peak_gb"] = peak_gb(peak)
    if {"prepared", "assembling"} <= set(marks):
        # The steps are worked out by the workers as the notebooks run: one phase, unless
        # the runner worked them all out first.
        steps_from = marks.get("worked_out", marks["prepared"])
        result |= {
            "prepare_s": marks["prepared"],
            "notebooks_s": marks["assembling"] - steps_from,
            "assemble_s": wall - marks["assembling"],
            "steps": steps,
        }
        if "worked_out" in marks:
            result["work_out_s"] = marks["worked_out"] - marks["prepared"]
    return result


def fresh_clone(folder: Path) -> Path:
    """A copy of the project as a fresh clone holds it: the files git lists (tracked, and new
    files it does not ignore), so no environment, compiled files, workbooks or caches."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(
            "The cold run copies the project's files as git lists them, so it needs git and a "
            "git checkout. Leave it out with --no-cold."
        ) from exc
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file() or source.is_symlink():  # a deleted file git still tracks is left out
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name, follow_symlinks=False)
    return folder


#: A new user's settings and caches: Matplotlib's (its font cache too), IPython's and Jupyter's.
USER_FOLDERS = {
    "MPLCONFIGDIR": "matplotlib",
    "IPYTHONDIR": "ipython",
    "JUPYTER_CONFIG_DIR": "jupyter-config",
    "JUPYTER_DATA_DIR": "jupyter-data",
}


def new_user_env(folder: Path) -> dict:
    """This environment, with the folders in USER_FOLDERS new and empty, as for someone who has
    never run Matplotlib, IPython or Jupyter."""
    env = dict(os.environ)
    for variable, name in USER_FOLDERS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        env[variable] = str(folder / name)
    # Run from `make bench`, this process has make's settings; the install is a `make setup` of
    # its own, with the Makefile's own settings.
    for variable in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(variable, None)
    return env


def install(project: Path, env: dict) -> dict:
    """`make setup` in a fresh clone, with the Python this benchmark runs on: a new `.venv`,
    the packages (from pip's cache when it has them) and the setup's first-run work."""
    python = getattr(sys, "_base_executable", None) or sys.executable
    cmd = ["make", "-C", str(project), "setup", f"PYTHON={python}"]
    cpu = _children_cpu()
    load_before = load()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"make setup failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {
        "wall_s": wall,
        "cpu_s": _children_cpu() - cpu,
        "load_before": load_before,
        "load_after": load(),
    }


def bench_cold(config: Path, folder: Path) -> tuple[dict, dict]:
    """The first `--force` run after installing: a fresh clone, `make setup` in it (timed on its
    own), then the command from the new installation, as a new user (see the module's docstring)."""
    project = fresh_clone(folder / "project")
    env = new_user_env(folder / "user")
    print("Installing into a new environment (make setup)", flush=True)
    installed = install(project, env)
    if config == SAMPLE:
        config = project / SAMPLE.relative_to(ROOT)
    first = run_command(config, folder / "out", env=env, bin=project / ".venv" / "bin", cwd=project)
    return installed, first


def bench_size(rows: int, repeats: int, cold: bool) -> dict:
    config = make_service(rows)
    figures = {"rows": rows}
    with tempfile.TemporaryDirectory(prefix="equity-bench-") as tmp:
        tmp = Path(tmp)
        if cold:
            figures["install"], figures["cold"] = bench_cold(config, tmp / "cold")
        run_command(config, tmp / "warm-up")  # untimed: compiled files and caches in place
        warm = []
        for k in range(repeats):
            out = tmp / f"warm-{k}"
            warm.append(run_command(config, out))
        figures["warm"] = warm
        figures["rerun"] = run_command(config, tmp / f"warm-{repeats - 1}", force=False)
    figures["compute"] = bench_compute(config)
    return figures


COMPUTE = """
import json, sys, tempfile, time
from pathlib import Path
start = time.perf_counter()
from equity_helpers.config import load_config
from equity_helpers.preparation import prepare_to_file
from equity_helpers.service import open_service
from equity_helpers.steps import STEPS
imported = time.perf_counter()
cfg = load_config(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    prepared, _ = prepare_to_file(cfg, Path(tmp) / "prepared.parquet")
    ready = time.perf_counter()
    service = open_service(sys.argv[1], str(prepared))
    steps = {}
    for name, module in STEPS.items():
        t = time.perf_counter()
        module.run(service)
        steps[name] = time.perf_counter() - t
end = time.perf_counter()
print(json.dumps({"import_s": imported - start, "prepare_s": ready - imported,
                  "steps_s": end - ready, "total_s": end - start, "steps": steps}))
"""


def bench_compute(config: Path) -> dict:
    """Every step's run in one plain Python process: no notebooks, no HTML."""
    printed, figures = run_script(COMPUTE, config)
    return json.loads(printed[-1]) | figures


def make_batch(n: int) -> Path:
    """A folder of ``n`` copies of the sample config, each its own service (its own name, so
    its own workbook folder), with every path made absolute. Made under _runs, never committed."""
    folder = RUNS / "batch" / f"configs-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    raw = yaml.safe_load(SAMPLE.read_text())
    raw["extract"]["path"] = str((SAMPLE.parent / raw["extract"]["path"]).resolve())
    for section in ("reference", "readability"):
        for key, value in (raw.get(section) or {}).items():
            if isinstance(value, str) and (SAMPLE.parent / value).exists():
                raw[section][key] = str((SAMPLE.parent / value).resolve())
    for i in range(1, n + 1):
        raw["service"]["name"] = f"Batch service {i:02d}"
        (folder / f"service_{i:02d}.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return folder


def run_batch_command(configs: Path, out: Path, scheduler: str | None = None) -> dict:
    """`equity-workbook run --config <folder>` once, locally or on a scheduler: wall time and
    the load around it (CPU seconds are counted by the caller)."""
    cmd = [str(BIN / "equity-workbook"), "run", "--config", str(configs), "--out", str(out)]
    cmd += ["--force"] + (["--scheduler", scheduler, "--jobs", "2"] if scheduler else [])
    load_before = load()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    built = proc.stdout.count(": workbook built")
    if proc.returncode != 0:
        raise SystemExit(f"the batch run failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return {"wall_s": wall, "built": built, "load_before": load_before, "load_after": load()}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_batch(n: int) -> dict:
    """N sample-sized services in one command: locally (one service after another, its
    steps on every core), and on a two-worker Dask LocalCluster that the command starts
    for the run (`--scheduler local`)."""
    configs = make_batch(n)
    outs = RUNS / "batch" / "out"
    shutil.rmtree(outs, ignore_errors=True)
    figures: dict = {"services": n, "cores": os.cpu_count()}
    print(f"Batch of {n} services, locally", flush=True)
    cpu = _children_cpu()
    figures["local"] = run_batch_command(configs, outs / "local")
    figures["local"]["cpu_s"] = _children_cpu() - cpu
    print(json.dumps(figures["local"]), flush=True)
    print(f"Batch of {n} services, on a 2-worker LocalCluster (--scheduler local)", flush=True)
    cpu = _children_cpu()
    # One command: the run starts a cluster of this machine's two cores and ends it.
    figures["cluster"] = run_batch_command(configs, outs / "cluster", "local")
    figures["cluster"]["cpu_s"] = _children_cpu() - cpu
    shutil.rmtree(outs, ignore_errors=True)
    return figures


def machine() -> str:
    cores = os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        memory = f", {mem:.0f} GiB memory"
    except (ValueError, OSError, AttributeError):
        memory = ""
    return f"{cores} cores{memory}, Python {platform.python_version()}, {platform.system()}"


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs if key in r)


def _loads(runs: list[dict]) -> str:
    values = [r["load_before"] for r in runs] + [r["load_after"] for r in runs]
    return f"{min(values):.1f}-{max(values):.1f}"


def _peak(runs: list[dict]) -> str:
    peaks = [r["peak_gb"] for r in runs if r.get("peak_gb") is not None]
    return f"{max(peaks):.2f}" if peaks else "-"


def write_readme(results: dict) -> None:
    lines = [
        "| Referrals | Run | Wall (s) | CPU (s) | Prepare (s) | Steps (s) | Notebooks (s) "
        "| HTML (s) | Peak memory (GB) | Load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size in results["sizes"]:
        n = f"{size['rows']:,}"
        rows = []
        if "install" in size:
            i = size["install"]
            lines.append(
                f"| {n} | install (`make setup`, new environment) | {i['wall_s']:.1f} "
                f"| {i['cpu_s']:.1f} | - | - | - | - | - | {_loads([i])} |"
            )
        if "cold" in size:
            rows.append(("cold, `--force`, first run after install", [size["cold"]]))
        if "prepare" in size:
            p = size["prepare"]
            lines.append(
                f"| {n} | prepare only | {p['wall_s']:.1f} | - | {p['prepare_s']:.1f} | - | - "
                f"| - | {_peak([p])} | {_loads([p])} |"
            )
        rows.append((f"warm, `--force` (median of {len(size['warm'])})", size["warm"]))
        rows.append(("unchanged re-run", [size["rerun"]]))
        for label, runs in rows:
            cells = [
                f"{_median(runs, k):.1f}" if any(k in r for r in runs) else "-"
                for k in ("wall_s", "cpu_s", "prepare_s", "work_out_s", "notebooks_s", "assemble_s")
            ]
            lines.append(
                f"| {n} | {label} | " + " | ".join(cells) + f" | {_peak(runs)} | {_loads(runs)} |"
            )
        c = size["compute"]
        lines.append(
            f"| {n} | compute only (one process) | {c['total_s']:.1f} | - | "
            f"{c['import_s'] + c['prepare_s']:.1f} | {c['steps_s']:.1f} | - | - | "
            f"{_peak([c])} | {_loads([c])} |"
        )
    table = "\n".join(lines)
    bytecode = (
        ""
        if results.get("writes_bytecode", True)
        else " `PYTHONDONTWRITEBYTECODE` was set: Python wrote no compiled files during the runs "
        "(only pip and `make setup` wrote them)."
    )
    block = (
        f"<!-- results -->\nMeasured {results['date']} on {results['machine']}. "
        "Load is the one-minute load average before and after each run "
        f"(the machine has {os.cpu_count()} cores).{bytecode}\n\n{table}\n<!-- /results -->"
    )
    readme = ROOT / "benchmarks" / "README.md"
    text = readme.read_text()
    text = re.sub(r"<!-- results -->.*<!-- /results -->", lambda _m: block, text, flags=re.S)
    readme.write_text(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="6000,100000", help="referrals, comma-separated")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs for each size")
    ap.add_argument("--no-cold", action="store_true", help="leave out the cold run")
    ap.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="time N sample-sized services in one command, locally and on a 2-worker "
        "Dask LocalCluster, instead of the sizes",
    )
    args = ap.parse_args(argv)
    RUNS.mkdir(parents=True, exist_ok=True)
    # As `make setup` leaves it, even when Python is told not to write compiled files.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "equity_helpers"], cwd=ROOT, check=True
    )
    if args.batch:
        figures = bench_batch(args.batch) | {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
        }
        (RUNS / f"batch-{args.batch}.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=1))
        return
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "writes_bytecode": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "sizes": [],
    }
    for rows in (int(s) for s in args.sizes.split(",")):
        print(f"Benchmarking {rows:,} referrals", flush=True)
        if rows >= BUILD_LIMIT:
            results["sizes"].append(bench_big(rows))
        else:
            results["sizes"].append(bench_size(rows, args.repeats, cold=not args.no_cold))
        (RUNS / "results.json").write_text(json.dumps(results, indent=2))
    write_readme(results)
    print(json.dumps(results, indent=1))
    shutil.rmtree(RUNS / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
