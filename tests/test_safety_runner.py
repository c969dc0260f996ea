"""The workbook runner never loses or damages anything: not a folder it did not make, not
the last good workbook, not the privacy of the prepared data, and not the user's time.

Each test builds a small workbook (one or two steps) or interrupts a real run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from equity_helpers.config import load_config
from equity_helpers.errors import WorkbookError
from equity_helpers.preparation import input_fingerprint, prepare_to_file
from equity_helpers.workbook import run_many, run_workbook, slugify

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("equity-workbook")
SAMPLE_CFG = ROOT / "sample_data" / "sample_service.yml"
ONE_STEP = ["data-completeness"]
SAMPLE_NAME = "Derbyshire Long COVID Rehabilitation Service (synthetic example)"
SAMPLE_SLUG = slugify(SAMPLE_NAME)


# ----------------------------------------------------------------------------- helpers


def write_config(folder: Path, name: str | None = None, *, own_letters: bool = False) -> Path:
    """A copy of the sample config with absolute paths, optionally another service name."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = yaml.safe_load(SAMPLE_CFG.read_text())
    base = SAMPLE_CFG.parent
    raw["extract"]["path"] = str(base / raw["extract"]["path"])
    for key, value in raw["reference"].items():
        if isinstance(value, str):
            raw["reference"][key] = str(base / value)
    if own_letters:
        for key, value in raw["readability"].items():
            shutil.copytree(base / value, folder / "letters" / key)
            raw["readability"][key] = str(folder / "letters" / key)
    else:
        raw["readability"] = {k: str(base / v) for k, v in raw["readability"].items()}
    if name is not None:
        raw["service"]["name"] = name
    path = folder / "service.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def slow_notebooks(tmp_path_factory) -> Path:
    """The notebooks, with a long pause at the end of the data-completeness step."""
    folder = tmp_path_factory.mktemp("slow") / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder)
    step = folder / "data-completeness.md"
    step.write_text(
        step.read_text() + "\n```{code-cell} ipython3\nimport time\n\ntime.sleep(600)\n```\n"
    )
    return folder


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) for every process, read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmd)
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every living process started, directly or not, by ``pid``: pid -> command line."""
    table = _proc_table()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _, cmd) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmd
                todo.append(child)
    return found


def alive(pids) -> list[int]:
    table = _proc_table()
    return [p for p in pids if p in table and table[p][1] != "Z"]


def still_alive_after(pids, seconds: float) -> dict[int, str]:
    """The processes still running ``seconds`` after the run ended (a process the run
    stopped may take a moment to be gone), with their command lines."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {p: pids[p] for p in alive(pids)}


def _ctrl_c_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_slow_run(tmp_path: Path, slow_notebooks: Path, out: Path, config=SAMPLE_CFG):
    """Start `equity-workbook run` as a terminal starts a job, and wait until a step runs.

    Returns the process and the processes it started (workers and notebook kernels).
    """
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(temp))
    proc = subprocess.Popen(
        [
            str(CLI),
            "run",
            "--config",
            str(config),
            "--out",
            str(out),
            "--notebooks",
            str(slow_notebooks),
            "--steps",
            "data-completeness",
            "--jobs",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group, as a shell gives a job
        # A terminal's job answers Ctrl-C, even when this test run was started in the
        # background (where a shell starts programs with Ctrl-C ignored).
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        family = descendants(proc.pid)
        if any("ipykernel" in cmd for cmd in family.values()):
            time.sleep(2)  # let the kernel start on the notebook
            return proc, descendants(proc.pid)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    out_text, err_text = proc.communicate()
    pytest.fail("the run never reached a notebook step:\n" + out_text + err_text)


def wait_until_gone(pids, seconds: float = 10) -> list[int]:
    """The processes still alive after waiting up to ``seconds`` for them to end."""
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def row_level_files(folder: Path) -> list[Path]:
    """Files that can hold rows of the extract: prepared Parquet files and partial builds."""
    if not folder.exists():
        return []
    return [p for p in folder.rglob("*") if p.suffix == ".parquet" or "partial" in p.name.lower()]


# ----------------------------------------------------------------------------- 1. data loss


def test_run_refuses_a_folder_it_did_not_make(tmp_path):
    config = write_config(tmp_path / "cfg", "My Precious Data")
    precious = tmp_path / "out" / "my-precious-data"
    precious.mkdir(parents=True)
    (precious / "notes.txt").write_text("three years of meeting notes")
    (precious / "plans").mkdir()
    (precious / "plans" / "2025.md").write_text("the plan")
    with pytest.raises(WorkbookError) as err:
        run_workbook(config, tmp_path / "out", jobs=1, steps=ONE_STEP)
    assert err.value.code == "RUN005"
    message = str(err.value)
    assert str(precious) in message
    assert "--out" in message and "move" in message.lower()
    assert (precious / "notes.txt").read_text() == "three years of meeting notes"
    assert (precious / "plans" / "2025.md").read_text() == "the plan"
    assert sorted(p.name for p in precious.rglob("*")) == ["2025.md", "notes.txt", "plans"]


@pytest.mark.slow
def test_a_failed_publish_keeps_the_last_good_workbook(tmp_path, monkeypatch, sample_one_step):
    out = sample_one_step(tmp_path / "out")  # as after a first run of the step
    final = out / SAMPLE_SLUG
    assert (final / "manifest.json").is_file()
    before = {p.relative_to(final): p.read_bytes() for p in final.rglob("*") if p.is_file()}
    assert before

    real_rename, real_replace = os.rename, os.replace
    faults = []

    def failing(move):
        def move_but_not_into_place(src, dst, *a, **k):
            # The first move of a new workbook into place fails, as on a full disk.
            if Path(dst) == final and Path(src) != final and not faults:
                faults.append(src)
                raise OSError(28, "No space left on device")
            return move(src, dst, *a, **k)

        return move_but_not_into_place

    real_copytree = shutil.copytree

    def copy_but_not_into_place(src, dst, *a, **k):
        if Path(dst) == final:  # a copy into place fails on the full disk too
            raise OSError(28, "No space left on device")
        return real_copytree(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", failing(real_rename))
    monkeypatch.setattr(os, "replace", failing(real_replace))
    monkeypatch.setattr(shutil, "copytree", copy_but_not_into_place)
    with pytest.raises(WorkbookError):
        run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, force=True)
    monkeypatch.undo()
    assert faults, "the new workbook was never moved into place"
    after = {p.relative_to(final): p.read_bytes() for p in final.rglob("*") if p.is_file()}
    assert after == before
    # Nothing half-made is left beside it.
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".cache")) == [final.name]


# ----------------------------------------------------------------------------- 2. faults and privacy


def test_prepared_files_are_private(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.delenv("EQUITY_CACHE", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path, _ = prepare_to_file(load_config(SAMPLE_CFG))
    assert tmp_path in path.parents
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in path.parents:
        if folder == tmp_path:
            break
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


@pytest.mark.slow
def test_a_killed_run_leaves_no_patient_data_and_no_processes(tmp_path, slow_notebooks):
    out = tmp_path / "out"
    proc, family = start_slow_run(tmp_path, slow_notebooks, out)
    assert family, "the run started no worker"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    # Workers and kernels end with the run.
    left = wait_until_gone(family, seconds=10)
    assert left == [], {p: family[p] for p in left}
    # The output folder never holds the prepared rows.
    assert row_level_files(out) == []
    # The killed run's private temporary folder holds the rows, readable by its owner only.
    temp = tmp_path / "tmp"
    prepared = list(temp.rglob("*.parquet"))
    for p in prepared:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700, p.parent
    # The next run cleans up after the dead one, and works.
    env = dict(os.environ, TMPDIR=str(temp))
    again = subprocess.run(
        [str(CLI), "run", "--config", str(SAMPLE_CFG), "--out", str(out), "--steps", "pathway"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert row_level_files(out) == []
    assert list(temp.rglob("*.parquet")) == []
    assert [p for p in temp.iterdir() if "equity" in p.name] == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_dead_runs_own_temporary_folders_are_cleaned(tmp_path):
    from equity_helpers.workbook import _clean_stale_runs

    dead = tmp_path / f"equity-workbook-run-{_dead_pid()}-abc123"
    live = tmp_path / f"equity-workbook-run-{os.getpid()}-def456"
    other = tmp_path / "equity-workbook-run-notes"
    for d in (dead, live, other):
        d.mkdir()
        (d / "prepared.parquet").write_bytes(b"rows")
    (dead / ".lock").write_text("")
    _clean_stale_runs(tmp_path)
    assert not dead.exists()
    assert (live / "prepared.parquet").is_file()
    assert (other / "prepared.parquet").is_file()


def test_a_dead_publish_is_tidied_and_the_old_workbook_put_back(tmp_path):
    from equity_helpers.workbook import MADE_BY, _clean_other_stale_publishes

    out = tmp_path / "out"
    (out / ".cache" / "svc").mkdir(parents=True)
    pid = _dead_pid()
    old = out / f".svc.old-{pid}"  # the old workbook, moved aside just before the kill
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"made_by": MADE_BY, "service": "Svc"}))
    half = out / f".svc.partial-{pid}"  # the new one, half copied
    half.mkdir()
    (half / ".equity-workbook-partial").write_text("")
    mine = out / f".svc.partial-{pid + 1}"  # not marked: not the runner's
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    _clean_other_stale_publishes(out)
    assert json.loads((out / "svc" / "manifest.json").read_text())["service"] == "Svc"
    assert not old.exists() and not half.exists()
    assert (mine / "notes.txt").read_text() == "keep"


# ----------------------------------------------------------------------------- 3. cache faults


def test_fingerprint_covers_letters_and_file_contents(tmp_path):
    config = write_config(tmp_path, own_letters=True)
    cfg = load_config(config)
    first = input_fingerprint(cfg)
    assert input_fingerprint(load_config(config)) == first
    letter = tmp_path / "letters" / "before" / "appointment-letter.txt"
    text = letter.read_text()
    letter.write_text(text + "\nPlease bring a list of your medicines.\n")
    assert input_fingerprint(load_config(config)) != first
    letter.write_text(text)
    assert input_fingerprint(load_config(config)) == first
    # A new letter in the folder counts too.
    (letter.parent / "reminder.txt").write_text("We will text you the day before.")
    assert input_fingerprint(load_config(config)) != first
    (letter.parent / "reminder.txt").unlink()
    # A reference file changed in place, same size and time stamp, still counts.
    imd = tmp_path / "imd.csv"
    shutil.copy2(cfg.imd_path, imd)
    raw = yaml.safe_load(config.read_text())
    raw["reference"]["imd_path"] = str(imd)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    before = input_fingerprint(load_config(config))
    st = imd.stat()
    data = bytearray(imd.read_bytes())
    i = data.index(b"\n") + 1  # change one character of the first data row
    data[i] = ord("X") if data[i] != ord("X") else ord("Y")
    imd.write_bytes(bytes(data))
    os.utime(imd, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert imd.stat().st_size == st.st_size and imd.stat().st_mtime_ns == st.st_mtime_ns
    assert input_fingerprint(load_config(config)) != before


@pytest.mark.slow
def test_force_runs_every_step_again(tmp_path, sample_one_step):
    out = sample_one_step(tmp_path / "out")  # as after a first run of the step
    assert run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP).reused  # the guard
    again = run_workbook(SAMPLE_CFG, out, jobs=1, steps=ONE_STEP, force=True)
    assert not again.reused
    assert [s.status for s in again.steps] == ["ok"]


@pytest.mark.slow
def test_a_damaged_cache_entry_is_run_again(tmp_path, sample_one_step):
    out = sample_one_step(tmp_path / "out")  # as after a first run of the step
    cached = [p for p in (out / ".cache").rglob("*.ipynb")]
    assert cached
    for p in cached:  # as a full disk leaves them
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    result = run_workbook(SAMPLE_CFG, out, jobs=1, steps=["data-completeness", "readability"])
    assert result.ok, [s.message for s in result.failures]
    statuses = {s.name: s.status for s in result.steps}
    assert statuses == {"data-completeness": "ok", "readability": "ok"}
    assert result.headlines()["rows_used"]


@pytest.mark.slow
def test_an_edited_letter_is_scored_again(tmp_path):
    config = write_config(tmp_path / "cfg", own_letters=True)
    out = tmp_path / "out"
    first = run_workbook(config, out, jobs=1, steps=["readability"])
    age = first.headlines()["reading_age_before"]
    long_sentence = (
        "Notwithstanding the aforementioned considerations regarding multidisciplinary "
        "rehabilitation, individuals experiencing persistent post-viral symptomatology "
        "should communicate comprehensively with administrative representatives "
        "concerning appointment availability, transportation arrangements, "
        "accessibility requirements and interpretation necessities. "
    )
    for letter in (tmp_path / "cfg" / "letters" / "before").glob("*.txt"):
        letter.write_text(long_sentence * 6)
    second = run_workbook(config, out, jobs=1, steps=["readability"])
    assert not second.reused
    assert [s.status for s in second.steps] == ["ok"]
    assert second.headlines()["reading_age_before"] != age


# ----------------------------------------------------------------------------- 4. collisions and concurrency


@pytest.mark.slow
def test_services_whose_names_look_alike_get_their_own_folders(tmp_path):
    a = write_config(tmp_path / "a", "A & B")
    b = write_config(tmp_path / "b", "A / B")
    out = tmp_path / "out"
    results = run_many([a, b], out, jobs=1, steps=ONE_STEP)
    assert [r.ok for r in results] == [True, True]
    folders = [r.out_dir for r in results]
    assert folders[0] != folders[1]
    for r in results:
        assert json.loads((r.out_dir / "manifest.json").read_text())["service"] == r.service
    index = (out / "index.html").read_text()
    for r in results:
        assert f'href="{r.out_dir.name}/html/index.html"' in index
    # Each service keeps its own folder when it runs again.
    again = run_many([b, a], out, jobs=1, steps=ONE_STEP)
    assert [r.out_dir for r in again] == folders[::-1]
    assert all(r.reused for r in again)


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_is_refused_clearly(tmp_path, slow_notebooks):
    out = tmp_path / "out"
    first, family = start_slow_run(tmp_path, slow_notebooks, out)
    try:
        second = subprocess.run(
            [
                str(CLI),
                "run",
                "--config",
                str(SAMPLE_CFG),
                "--out",
                str(out),
                "--notebooks",
                str(slow_notebooks),
                "--steps",
                "data-completeness",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        text = second.stdout + second.stderr
        assert second.returncode == 2, text
        assert "[RUN006]" in text
        assert "disk space" not in text
        assert "Traceback" not in text
        assert first.poll() is None, "the first run was disturbed"
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.communicate(timeout=60)
        wait_until_gone(family)


# ----------------------------------------------------------------------------- 5. Ctrl-C


@pytest.mark.slow
def test_ctrl_c_stops_at_once_with_one_line(tmp_path, slow_notebooks):
    out = tmp_path / "out"
    proc, family = start_slow_run(tmp_path, slow_notebooks, out)
    assert any("ipykernel" in cmd for cmd in family.values())
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    # The step sleeps for ten minutes: a run that waited for it would time out here.
    stdout, stderr = proc.communicate(timeout=60)
    seconds = time.monotonic() - start
    print(f"Ctrl-C: the run ended {seconds:.1f} s after the signal")
    assert proc.returncode == 130, stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stdout + stderr
    assert "RUN004" in lines[0]
    assert still_alive_after(family, 3) == {}
    assert row_level_files(out) == []
    assert [p for p in (tmp_path / "tmp").iterdir() if "equity" in p.name] == []


# ----------------------------------------------------------------------------- 6. machine paths


def _machine_paths(*extra: Path) -> list[str]:
    import tempfile

    paths = {str(ROOT), str(Path.home()), tempfile.gettempdir(), *map(str, extra)}
    return sorted(p for p in paths if len(p) > 1)


def _files_holding(folder: Path, needles: list[str]) -> dict[str, list[str]]:
    hits = {}
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        blobs = [p.read_bytes()]
        if p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                blobs += [z.read(n) for n in z.namelist()]
        found = [n for n in needles for b in blobs if n.encode() in b]
        if found:
            hits[str(p.relative_to(folder))] = sorted(set(found))
    return hits


@pytest.mark.slow
def test_published_files_hold_no_machine_paths(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    broken = notebooks / "pathway.md"
    broken.write_text(
        broken.read_text() + "\n```{code-cell} ipython3\nraise RuntimeError('planted')\n```\n"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(CLI),
            "run",
            "--config",
            str(SAMPLE_CFG),
            "--out",
            str(out),
            "--notebooks",
            str(notebooks),
            "--steps",
            "data-completeness,pathway",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, TMPDIR=str(temp)),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    folder = next(p for p in out.iterdir() if not p.name.startswith("."))
    assert (folder / "logs" / "pathway.ipynb").is_file()
    needles = _machine_paths(out, temp, tmp_path, notebooks)
    assert _files_holding(folder, needles) == {}


@pytest.mark.slow
def test_the_whole_sample_workbook_holds_no_machine_paths(sample_workbook):
    out, proc, _ = sample_workbook
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = out / "derbyshire-long-covid-rehabilitation-service-synthetic-example"
    assert _files_holding(folder, _machine_paths(out.resolve())) == {}


def test_machine_folders_are_replaced_but_web_addresses_kept():
    from equity_helpers.workbook import scrub_text

    roots = [("/home/alice", "~"), ("/tmp", "<temporary folder>")]
    text = 'open "/home/alice/x.csv", file:///tmp/y and https://example.org/home/alice/z'
    assert scrub_text(text, roots) == (
        'open "~/x.csv", file://<temporary folder>/y and https://example.org/home/alice/z'
    )
    assert scrub_text("/tmpfiles and /home/alicea", roots) == "/tmpfiles and /home/alicea"
