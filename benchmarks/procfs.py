"""What Linux's /proc says about CPU time, memory and listening sockets.

The parsers are pure (text in, numbers out); :class:`ProcFs` reads the files. CPU times are
clock ticks (``SC_CLK_TCK`` per second); memory is in kB as the kernel reports it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TCP_LISTEN = "0A"


def machine_busy_ticks(stat_text: str) -> int:
    """Busy CPU ticks of the whole machine from /proc/stat: all - idle - iowait.

    Summed over every core, as the peer kit (``/work/shared/bench/run.py``) counts them, so
    the two benchmarks' machine figures compare.
    """
    for line in stat_text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            ticks = [int(v) for v in parts[1:]]
            return sum(ticks) - ticks[3] - ticks[4]
    raise ValueError("no 'cpu' line in /proc/stat")


def process_ticks(stat_text: str) -> int:
    """User + system ticks of a process (all its threads) from /proc/<pid>/stat."""
    # The command name (field 2) is in parentheses and may hold spaces and parentheses:
    # fields are counted from after the last ')'. utime, stime are fields 14 and 15.
    rest = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def start_ticks(stat_text: str) -> int:
    """When a process started, in ticks since boot, from /proc/<pid>/stat (field 22)."""
    return int(stat_text[stat_text.rindex(")") + 2 :].split()[19])


def parent_pid(stat_text: str) -> int:
    """The parent's pid from /proc/<pid>/stat."""
    return int(stat_text[stat_text.rindex(")") + 2 :].split()[1])


def rss_kb(status_text: str, field: str = "VmRSS") -> int:
    """Resident memory (``VmRSS``, or ``VmHWM`` for the peak) in kB from /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0  # a kernel thread, or a process that is exiting


def environment_vars(environ: bytes) -> dict[str, str]:
    """The variables of ``/proc/<pid>/environ`` (NUL-separated ``NAME=value``)."""
    pairs = (item.decode(errors="replace").partition("=") for item in environ.split(b"\0"))
    return {name: value for name, _, value in pairs if name}


def listening_inodes(tcp_text: str, port: int) -> set[int]:
    """Socket inodes listening on ``port`` in a /proc/net/tcp or tcp6 table."""
    inodes = set()
    for line in tcp_text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or parts[3] != TCP_LISTEN:
            continue
        if int(parts[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(int(parts[9]))
    return inodes


def descendants(parents: dict[int, int], roots: Iterable[int]) -> set[int]:
    """The roots and every process below them, given pid → parent pid."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


@dataclass(frozen=True)
class ProcFs:
    """Reads /proc (another root for tests)."""

    root: Path = Path("/proc")

    @staticmethod
    def ticks_per_second() -> int:
        """Clock ticks per second of the CPU times."""
        return os.sysconf("SC_CLK_TCK")

    def machine_busy(self) -> int:
        """Busy ticks of the whole machine so far."""
        return machine_busy_ticks((self.root / "stat").read_text())

    def _read(self, pid: int, name: str) -> str | None:
        try:
            return (self.root / str(pid) / name).read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None

    def ticks(self, pids: Iterable[int]) -> int:
        """User + system ticks of the processes (a vanished one counts 0)."""
        texts = (self._read(pid, "stat") for pid in pids)
        return sum(process_ticks(t) for t in texts if t)

    def age_s(self, pid: int) -> float | None:
        """Seconds since a process started (None when it is gone)."""
        text = self._read(pid, "stat")
        if text is None:
            return None
        uptime_s = float((self.root / "uptime").read_text().split()[0])
        return uptime_s - start_ticks(text) / self.ticks_per_second()

    def environment(self, pid: int) -> dict[str, str] | None:
        """A process's environment as it started (None when it is gone or not ours)."""
        try:
            return environment_vars((self.root / str(pid) / "environ").read_bytes())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None

    def rss(self, pid: int, field: str = "VmRSS") -> int:
        """Resident memory of one process in kB (0 when it is gone)."""
        text = self._read(pid, "status")
        return rss_kb(text, field) if text else 0

    def tree(self, root: int) -> set[int]:
        """A process and its descendants now."""
        parents = {}
        for entry in self.root.iterdir():
            if entry.name.isdigit():
                text = self._read(int(entry.name), "stat")
                if text:
                    parents[int(entry.name)] = parent_pid(text)
        return descendants(parents, [root])

    def listener(self, port: int) -> int | None:
        """The pid of the process listening on a TCP port, or None (not here, no access)."""
        inodes: set[int] = set()
        for table in ("net/tcp", "net/tcp6"):
            try:
                inodes |= listening_inodes((self.root / table).read_text(), port)
            except FileNotFoundError:
                continue
        if not inodes:
            return None
        wanted = {f"socket:[{inode}]" for inode in inodes}
        for entry in self.root.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                for fd in (entry / "fd").iterdir():
                    if os.readlink(fd) in wanted:
                        return int(entry.name)
            except (FileNotFoundError, PermissionError, ProcessLookupError, NotADirectoryError):
                continue
        return None
