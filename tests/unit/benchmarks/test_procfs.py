"""Parsing what /proc says about CPU, memory and listening sockets."""

from pathlib import Path

from benchmarks.procfs import (
    ProcFs,
    descendants,
    environment_vars,
    listening_inodes,
    machine_busy_ticks,
    parent_pid,
    process_ticks,
    rss_kb,
    start_ticks,
)

STAT = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\nintr 12345\n"
# A command name with a space and a parenthesis, as Java or Python threads may have.
PID_STAT = (
    "4242 (python3 (x) y) S 17 4242 17 0 -1 4194304 900 0 0 0 "
    "1234 567 3 4 20 0 5 0 1000 123456 789 18446744073709551615"
)
STATUS = "Name:\tpython3\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t5\n"
_ROW = "{sl}: 0100007F:{port} {remote} {st} 00000000:00000000 00:00000000 00000000 0 0 {inode} 1"
TCP = "\n".join(
    [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid ...",
        _ROW.format(sl=0, port="075B", remote="00000000:0000", st="0A", inode=111),
        _ROW.format(sl=1, port="075B", remote="0100007F:9C40", st="01", inode=222),
        _ROW.format(sl=2, port="1F90", remote="00000000:0000", st="0A", inode=333),
    ]
)


def test_machine_busy_is_all_minus_idle_and_iowait() -> None:
    assert machine_busy_ticks(STAT) == 100 + 5 + 50 + 3 + 2 + 7


def test_process_ticks_are_user_plus_system_despite_odd_names() -> None:
    assert process_ticks(PID_STAT) == 1234 + 567
    assert parent_pid(PID_STAT) == 17


def test_rss_and_peak_in_kb() -> None:
    assert rss_kb(STATUS) == 102400
    assert rss_kb(STATUS, "VmHWM") == 204800
    assert rss_kb("Name:\tkthreadd\n") == 0


def test_only_listening_sockets_on_the_port() -> None:
    assert listening_inodes(TCP, 1883) == {111}  # 0x075B; the connected one (st 01) is not
    assert listening_inodes(TCP, 8080) == {333}
    assert listening_inodes(TCP, 9092) == set()


def test_descendants_follow_the_tree() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1}
    assert descendants(parents, [10]) == {10, 11, 12}
    assert descendants(parents, [99]) == {99}


def test_procfs_reads_a_fake_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(STAT)
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    proc = tmp_path / "4242"
    (proc / "fd").mkdir(parents=True)
    (proc / "stat").write_text(PID_STAT)
    (proc / "status").write_text(STATUS)
    (proc / "fd" / "3").symlink_to("socket:[111]")
    fs = ProcFs(tmp_path)
    assert fs.machine_busy() == 167
    assert fs.ticks([4242, 999]) == 1801  # a vanished process counts 0
    assert fs.rss(4242) == 102400
    assert fs.rss(999) == 0
    assert fs.listener(1883) == 4242
    assert fs.listener(8080) is None  # listening, but no process of ours holds it
    assert fs.tree(4242) == {4242}


def test_a_process_s_start_and_age() -> None:
    assert start_ticks(PID_STAT) == 1000


def test_age_from_uptime_and_start(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(PID_STAT)
    (tmp_path / "uptime").write_text("250.50 400.00\n")
    hz = ProcFs.ticks_per_second()
    assert ProcFs(tmp_path).age_s(4242) == 250.5 - 1000 / hz
    assert ProcFs(tmp_path).age_s(99) is None


def test_a_process_s_environment(tmp_path: Path) -> None:
    environ = b"PATH=/usr/bin\0GOGC=400\0EMPTY=\0WITH_EQUALS=a=b\0"
    assert environment_vars(environ) == {
        "PATH": "/usr/bin",
        "GOGC": "400",
        "EMPTY": "",
        "WITH_EQUALS": "a=b",
    }
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "environ").write_bytes(environ)
    assert ProcFs(tmp_path).environment(4242) == environment_vars(environ)
    assert ProcFs(tmp_path).environment(99) is None  # gone
