"""``tinyaug browse`` serves only what it needs: the real command in a subprocess on 127.0.0.1,
driven with plain HTTP requests (uploads and file routes refused, bodies bounded, a password
when asked for, its temporary folder gone when it stops), and its options through click with
the server mocked (the warning for a non-loopback address, a malformed --auth)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyaug.pipelines.cli import main

pytest.importorskip("gradio")
from tinyaug.pipelines.browse.guard import MAX_BODY_BYTES, is_loopback, parse_auth  # noqa: E402

USER, PASSWORD = "ada", "s3cret:with-colon"
BOUNDARY = "tinyaugtest"
UPLOAD = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"note.txt\"\r\n"
          f"Content-Type: text/plain\r\n\r\nparked here\r\n--{BOUNDARY}--\r\n").encode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body=None, headers=None, chunked: bool = False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("set-cookie") or ""
    finally:
        connection.close()


def stored_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``tinyaug browse --auth`` in a subprocess whose system temporary folder is ours to watch."""
    root = tmp_path_factory.mktemp("browse-security")
    system_temp = root / "tmp"
    system_temp.mkdir()
    port = free_port()
    env = dict(os.environ, TMPDIR=str(system_temp), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               TINYAUG_BROWSE_AUTH=f"{USER}:{PASSWORD}")
    env.pop("GRADIO_TEMP_DIR", None)
    process = subprocess.Popen([sys.executable, "-m", "tinyaug.pipelines.cli", "browse", "--port", str(port)],
                               cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            if request(port, "GET", "/")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"browse did not start: {process.communicate()}")
        time.sleep(0.3)
    status, _, cookie = request(port, "POST", "/login", f"username={USER}&password={PASSWORD}".encode(),
                                {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and "access-token" in cookie
    yield {"port": port, "temp": system_temp, "process": process, "root": root,
           "cookie": {"Cookie": cookie.split(";")[0]}}
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_without_the_password_nothing_but_the_login_page_is_served(server):
    port = server["port"]
    assert request(port, "GET", "/config")[0] == 401
    assert request(port, "POST", "/gradio_api/queue/join", b"{}", {"Content-Type": "application/json"})[0] == 401
    wrong = request(port, "POST", "/login", f"username={USER}&password=nope".encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert wrong[0] >= 400 and "access-token" not in wrong[2]
    assert request(port, "GET", "/config", headers=server["cookie"])[0] == 200


def test_an_upload_is_refused_and_stored_nowhere(server):
    port, temp = server["port"], server["temp"]
    headers = {**server["cookie"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    for path in ("/gradio_api/upload", "/upload"):
        status, body, _ = request(port, "POST", path, UPLOAD, headers)
        assert status == 403 and b"no uploads" in body
    assert stored_files(temp) == [] and stored_files(server["root"]) == []
    for path in ("/gradio_api/file=" + str(temp / "note.txt"), "/gradio_api/file=/etc/hostname", "/file=/etc/hostname"):
        assert request(port, "GET", path, headers=server["cookie"])[0] == 403


def test_a_large_body_is_refused_declared_or_streamed(server):
    port = server["port"]
    headers = {**server["cookie"], "Content-Type": "application/json"}
    status, body, _ = request(port, "POST", "/gradio_api/queue/join", b"x" * (MAX_BODY_BYTES + 1), headers)
    assert status == 413 and b"limited to" in body
    chunks = iter([b"[" + b" " * 100_000] * (MAX_BODY_BYTES // 100_000 + 2))  # no Content-Length: counted
    status, body, _ = request(port, "POST", "/gradio_api/queue/join", chunks, headers, chunked=True)
    assert status == 413 and b"limited to" in body
    assert request(port, "GET", "/config", headers=server["cookie"])[0] == 200  # still serving


def test_stopping_removes_its_temporary_folder(server):
    process = server["process"]
    made = list(server["temp"].iterdir())
    assert [p.name[:15] for p in made] == ["tinyaug-browse-"]  # Gradio's files, in a folder of its own
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("browse did not stop on Ctrl+C")
    assert list(server["temp"].iterdir()) == []


@pytest.fixture
def mocked_server(monkeypatch):
    """Run the command up to ``launch``, which records its arguments and the temporary folder."""
    calls = []

    def launch(app, host, port, block=True, auth=None):
        folder = Path(os.environ["GRADIO_TEMP_DIR"])
        calls.append({"host": host, "auth": auth, "folder": folder, "existed": folder.is_dir()})

    monkeypatch.setattr("tinyaug.pipelines.browse.app.launch", launch)
    monkeypatch.setattr("tinyaug.pipelines.browse.app.check_port", lambda host, port: None)
    monkeypatch.delenv("TINYAUG_BROWSE_AUTH", raising=False)
    return calls


def test_a_network_address_is_warned_about_in_one_line(mocked_server):
    result = CliRunner().invoke(main, ["browse", "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == ["Warning: --host 0.0.0.0 opens tinyaug browse to your network with no password: anyone who "
                        "can reach this machine can use it (add --auth USER:PASSWORD, or keep the default 127.0.0.1)"]
    call = mocked_server[-1]
    assert call["host"] == "0.0.0.0" and call["auth"] is None
    assert call["existed"] and not call["folder"].exists()  # its own temporary folder, removed after

    result = CliRunner().invoke(main, ["browse", "--host", "0.0.0.0", "--auth", "ada:pw"])
    assert result.exit_code == 0 and "plain HTTP" in result.stderr and mocked_server[-1]["auth"] == ("ada", "pw")
    result = CliRunner().invoke(main, ["browse"])
    assert result.exit_code == 0 and "Warning" not in result.stderr and mocked_server[-1]["host"] == "127.0.0.1"


@pytest.mark.parametrize("options, says", [(["--backend", "onnxruntime", "--precision", "bf16"], "for bf16 use --backend torch"),
                                           (["--device", "tpu"], "--device 'tpu': expected cpu, cuda")])
def test_model_options_it_cannot_run_are_refused_before_the_server_starts(mocked_server, options, says):
    pytest.importorskip("onnxruntime")
    result = CliRunner().invoke(main, ["browse", *options])
    assert result.exit_code == 1 and "Traceback" not in result.output and mocked_server == []
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr


@pytest.mark.parametrize("value", ["ada", ":pw", "ada:", ""])
def test_a_malformed_auth_is_one_line(mocked_server, value):
    result = CliRunner().invoke(main, ["browse", "--auth", value])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "Error: --auth takes USER:PASSWORD, both non-empty (e.g. --auth ada:s3cret, or set TINYAUG_BROWSE_AUTH "
        "to keep the password out of the process list)"]
    assert mocked_server == []


def test_auth_and_loopback_parsing():
    assert parse_auth("ada:s3cret:x") == ("ada", "s3cret:x")
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "::", "example.org"]))
