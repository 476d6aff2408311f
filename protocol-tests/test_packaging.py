"""The systemd unit in docs/packaging checks out with systemd-analyze, and its command line
starts the server (run against the binary under test)."""
import os
import shutil
import subprocess

import pytest

UNIT = os.path.join(os.path.dirname(__file__), "..", "docs", "packaging", "ratecached.service")


@pytest.mark.ratecached_only
def test_the_systemd_unit_verifies(binary, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    text = open(UNIT).read().replace("/usr/local/bin/ratecached", os.path.abspath(binary))
    unit = tmp_path / "ratecached.service"
    unit.write_text(text)
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # Complaints about the machine (no systemd running, unrelated units) are not this unit's.
    mine = [l for l in (r.stdout + r.stderr).splitlines() if "ratecached.service" in l]
    assert not mine, "\n".join(mine)


@pytest.mark.ratecached_only
def test_the_systemd_command_line_is_accepted(binary, tmp_path):
    line = next(l for l in open(UNIT) if l.startswith("ExecStart="))
    args = line.split("=", 1)[1].split()[1:]
    # Same flags, a scratch state file, and -h last: parsed in order, then the usage printed.
    args = [a.replace("/var/lib/ratecached/state", str(tmp_path / "state")) for a in args]
    r = subprocess.run([binary, *args, "-h"], capture_output=True, timeout=10)
    assert r.returncode == 0, r.stderr
