"""The kernels a worker keeps: one per worker thread per service's run, cleared between
that run's notebooks, and ended when the run is over or another run's notebook comes.

A kernel that starts, imports pandas, Matplotlib and the package once, and then runs all
of a service's notebooks that its worker takes, costs a third of one kernel per notebook.
No kernel is ever used for another service's run.
"""

from __future__ import annotations

import multiprocessing.util
import os
import threading
from pathlib import Path

#: A kernel keeps its shell history in memory: nothing is written to the user's home folder.
_KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]

#: How a kept kernel that could not be cleared for the next notebook is reported (that
#: notebook then runs in a new kernel).
NOT_CLEARED = "The kernel could not be cleared for the next notebook"

#: Run silently in a kept kernel before each notebook after its first: the notebook starts
#: as in a new kernel, with no names of the one before, no open charts, the playbook's
#: chart style, and its cells numbered from 1.
_RESET = """\
import sys as _sys
if "matplotlib.pyplot" in _sys.modules:
    _sys.modules["matplotlib.pyplot"].close("all")
if "equity_helpers.plots" in _sys.modules:
    _sys.modules["equity_helpers.plots"].use_style()
del _sys
get_ipython().reset(new_session=True)
"""


#: Run in a worker's kernel as soon as it starts, before its first notebook comes: what every
#: notebook loads (pandas, Matplotlib, the package and its steps), and a chart drawn and
#: thrown away (the first chart drawn in a process loads the fonts). The first notebook
#: clears the names away, as in any kept kernel.
_WARM_UP = """\
import io as _io
import matplotlib.pyplot as _plt
import equity_helpers.steps
from equity_helpers import plots as _plots
_fig, _ax = _plt.subplots()
_ax.barh(["One group", "Another group"], [1, 2])
_ax.set_title("A chart to load the fonts")
_ax.set_xlabel("Rate (%)")
_fig.savefig(_io.BytesIO(), format="svg", bbox_inches="tight")
_plt.close(_fig)
"""


def _manager_class():
    from jupyter_client import AsyncKernelManager

    class _Manager(AsyncKernelManager):
        """A kernel manager that remembers the clients it gives out, so that each can be
        closed after its notebook (papermill leaves a client it did not start open).

        An asynchronous manager, as papermill's own: its clients notice a kernel that died
        while a cell ran (a blocking client would wait for it for ever).
        """

        def client(self, **kwargs):
            return self.remember(super().client(**kwargs))

        def remember(self, kc):
            """Hold a client of this kernel until :meth:`close_clients`."""
            self.__dict__.setdefault("_given", []).append(kc)
            return kc

        def last_client(self):
            """The client given out last (the running notebook's)."""
            return self.__dict__.get("_given", [None])[-1]

        def close_clients(self) -> None:
            for kc in self.__dict__.pop("_given", []):
                try:
                    kc.stop_channels()
                except Exception:  # noqa: BLE001 - a client of a dead kernel
                    pass

    return _Manager


def _sync(method, *args, **kwargs):
    """Call one of a kernel manager's coroutine methods from plain code, on any thread."""
    from jupyter_core.utils import run_sync

    async def call():
        return await method(*args, **kwargs)

    return run_sync(call)()


class Kernel:
    """One started kernel, kept for the notebooks of one run (``run``, the run's private
    folder) in one worker thread.

    It starts in the run's private folder, with its error stream going to a log file
    there, not to the user's terminal.
    """

    def __init__(self, run: str, logs: Path):
        self.run = run
        self.used = False
        logs.mkdir(parents=True, exist_ok=True)
        self.err = open(logs / f"kernel-{os.getpid()}-{threading.get_ident()}.stderr.log", "a")
        self.km = _manager_class()(kernel_name="python3")
        try:
            _sync(
                self.km.start_kernel,
                cwd=run,
                stderr=self.err,
                extra_arguments=_KERNEL_ARGUMENTS,
            )
        except BaseException:
            self.err.close()
            raise

    def alive(self) -> bool:
        try:
            return bool(self.km.has_kernel and _sync(self.km.is_alive))
        except Exception:  # noqa: BLE001 - a kernel that cannot be asked is not alive
            return False

    def clearing(self):
        """What the notebook's client runs first, in a kernel an earlier notebook used: it
        clears what that notebook left, silently, or raises :data:`NOT_CLEARED`. None for a
        new kernel.

        It runs on the client that runs the notebook, once that client is connected (a
        client of its own would wait a few tenths of a second to connect, per notebook).
        """
        if not self.used:
            return None
        km = self.km

        async def clear(**_kwargs) -> None:
            reply = await km.last_client().execute_interactive(
                _RESET,
                silent=True,
                store_history=False,
                timeout=60,
                output_hook=lambda msg: None,
            )
            if reply["content"]["status"] != "ok":
                raise RuntimeError(NOT_CLEARED)

        return clear

    def shutdown(self) -> None:
        """End the kernel (at once: it holds nothing to keep) and close its log."""
        try:
            self.km.close_clients()
            if self.km.has_kernel:
                _sync(self.km.shutdown_kernel, now=True)
        except Exception:  # noqa: BLE001 - a kernel that already died
            pass
        finally:
            try:
                _sync(self.km.cleanup_resources)
            except Exception:  # noqa: BLE001
                pass
            self.err.close()


#: The kernels kept in this process, one per worker thread, while their notebooks are not
#: running (a thread takes its kernel out while it runs a notebook in it).
_kernels: dict[int, Kernel] = {}
_kernels_lock = threading.Lock()
_finalizer = None
#: The runs whose kernels were ended: a notebook of such a run still running (a cancelled
#: Dask task) ends its kernel when it finishes, rather than keeping it.
_ended_runs: set[str] = set()


def take_kernel(run: str, logs: Path) -> Kernel:
    """This thread's kernel for ``run``: the one it kept, or a new one. A kept kernel is
    cleared of its last notebook as the next one starts (see :meth:`Kernel.clearing`).

    A kernel kept for another run, or one that died, is ended first: no kernel carries one
    service's data into another's run.
    """
    global _finalizer
    with _kernels_lock:
        kernel = _kernels.pop(threading.get_ident(), None)
        if _finalizer is None:
            # Ends the kept kernels when this process ends normally (a pool's worker ends
            # without running ``atexit``; multiprocessing's finalizers still run).
            _finalizer = multiprocessing.util.Finalize(None, release_kernels, exitpriority=10)
    if kernel is not None and (kernel.run != run or not kernel.alive()):
        kernel.shutdown()
        kernel = None
    return kernel if kernel is not None else Kernel(run, logs)


def start_kernel(run: str, logs: Path) -> None:
    """Start this thread's kernel for ``run`` before its first notebook comes, and have it
    load what notebooks use (:data:`_WARM_UP`) while this thread does other work.

    The kernel is kept as if a notebook had run in it: the first notebook clears it.
    """
    from jupyter_client import BlockingKernelClient

    kernel = take_kernel(run, logs)
    kc = BlockingKernelClient()
    kc.load_connection_info(kernel.km.get_connection_info())
    kc.start_channels(iopub=False, stdin=False, hb=False, control=False)
    # Sent now, run by the kernel as soon as it is up. The client stays open (it is closed
    # with the first notebook's), so the request is not lost while the kernel starts.
    kc.execute(_WARM_UP, silent=True, store_history=False)
    kernel.km.remember(kc)
    kernel.used = True
    with _kernels_lock:  # take_kernel took this thread's kept kernel out: none is left
        _kernels[threading.get_ident()] = kernel


def keep_kernel(kernel: Kernel) -> None:
    """Keep this thread's kernel for the next notebook of its run, if it is still alive."""
    kernel.km.close_clients()
    alive = kernel.alive()
    with _kernels_lock:
        keep = alive and kernel.run not in _ended_runs
        old = _kernels.pop(threading.get_ident(), None)
        if keep:
            _kernels[threading.get_ident()] = kernel
    for other in (old, None if keep else kernel):
        if other is not None:
            other.shutdown()


def release_kernels(*runs: str) -> int:
    """End the kernels this process keeps for ``runs``, which are over (every kept kernel
    when none are named). A kernel of theirs still running a notebook is ended when that
    notebook finishes. Returns how many kernels were ended."""
    with _kernels_lock:
        _ended_runs.update(runs)
        gone = [
            _kernels.pop(thread)
            for thread, kernel in list(_kernels.items())
            if not runs or kernel.run in runs
        ]
    for kernel in gone:
        kernel.shutdown()
    return len(gone)
