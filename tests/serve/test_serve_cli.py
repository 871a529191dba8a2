"""`ganforge serve` as a command: it binds 127.0.0.1, says where, serves, refuses foreign Host headers, stops
cleanly on Ctrl-C; a busy port or a missing folder is one error line and exit code 2."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from ganforge.cli import main


def test_serve_command_listens_on_loopback_and_stops_on_ctrl_c(runs_dir):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", "--runs", str(runs_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        m = re.search(r"serving 7 run\(s\) from .* at (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = m.group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "api/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "the server did not answer"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["ok"]
        assert httpx.get(url + "api/runs/sg2/sample.png?n=1", timeout=60).headers["content-type"] == "image/png"
        bad = httpx.get(url + "api/health", headers={"host": "rebind.example"}, timeout=5)
        assert bad.status_code == 400 and "not served here" in bad.json()["error"]
        port = int(m.group(2))
        assert main(["serve", "--runs", str(runs_dir), "--port", str(port)]) == 2  # the port is taken
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 130 and err.strip() == "ganforge: interrupted", err  # the CLI's code for Ctrl-C


def test_serve_command_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", "--runs", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip().startswith("ganforge: error: no runs folder")
    assert main(["serve", "--port", "70000"]) == 2
    assert "ganforge: error:" in capsys.readouterr().err
