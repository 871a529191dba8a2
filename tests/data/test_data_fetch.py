"""fetch(): pinned SHA-256, temp file + os.replace, file:// and a 127.0.0.1 http.server; never the internet."""
import dataclasses
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from functools import partial

import pytest

import ganforge.data.fetch as fetch_module
from ganforge.data import build_dataset
from ganforge.data.fetch import fetch
from ganforge.errors import GanforgeError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(tmp_path, mnist_folder):
    """A folder of fake MNIST .gz files; returns (folder, {filename: bytes})."""
    folder = tmp_path / "mirror"
    mnist_folder(folder, gz=True, n_train=3, n_test=2)
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def pin(monkeypatch, name, files: dict, **kw):
    """Point the pinned table's `name` entry at `files` {filename: bytes or sha-hex}."""
    spec = fetch_module.DATASETS[name]
    pinned = tuple(
        fetch_module.RemoteFile(f, sha(d) if isinstance(d, bytes) else d) for f, d in files.items()
    )
    monkeypatch.setitem(fetch_module.DATASETS, name, dataclasses.replace(spec, files=pinned, **kw))


@pytest.fixture
def server(tmp_path):
    """An http.server on 127.0.0.1 (port 0) serving tmp_path/'mirror'; yields its base URL."""
    (tmp_path / "mirror").mkdir(exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path / "mirror")))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_file_url_good_hashes(tmp_path, mirror, monkeypatch):
    folder, files = mirror
    pin(monkeypatch, "mnist", files)
    out = fetch("mnist", str(tmp_path / "data"), base_url=folder.as_uri())
    assert sorted(p.name for p in out) == sorted(files)
    for p in out:
        assert p.read_bytes() == files[p.name]
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.endswith(".part")]
    ds = build_dataset("mnist-idx", root=str(tmp_path / "data"), split="test")
    assert len(ds) == 2


def test_file_url_bad_hash_deletes_and_reports(tmp_path, mirror, monkeypatch):
    folder, files = mirror
    wrong = "0" * 64
    pin(monkeypatch, "mnist", {**files, "t10k-labels-idx1-ubyte.gz": wrong})
    with pytest.raises(GanforgeError) as err:
        fetch("mnist", str(tmp_path / "data"), base_url=folder.as_uri())
    msg = str(err.value)
    assert wrong in msg and sha(files["t10k-labels-idx1-ubyte.gz"]) in msg and "\n" not in msg
    assert not (tmp_path / "data" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.endswith(".part")]


def test_http_server_good_then_cached(tmp_path, mirror, server, monkeypatch):
    _, files = mirror
    pin(monkeypatch, "fashion-mnist", files)
    out = fetch("fashion-mnist", str(tmp_path / "data"), base_url=server)
    assert {p.name: p.read_bytes() for p in out} == files
    # already present with the right digest: no download needed, so a dead mirror is fine
    again = fetch("fashion-mnist", str(tmp_path / "data"), base_url="http://127.0.0.1:9/")
    assert [p.name for p in again] == [p.name for p in out]


def test_http_server_bad_hash(tmp_path, mirror, server, monkeypatch):
    _, files = mirror
    pin(monkeypatch, "mnist", {"train-images-idx3-ubyte.gz": "ab" * 32})
    with pytest.raises(GanforgeError, match="SHA-256 mismatch"):
        fetch("mnist", str(tmp_path / "data"), base_url=server)
    assert list((tmp_path / "data").iterdir()) == []


def test_http_404(tmp_path, server, monkeypatch):
    pin(monkeypatch, "mnist", {"nope.gz": "cd" * 32})
    with pytest.raises(GanforgeError, match="HTTP 404"):
        fetch("mnist", str(tmp_path / "data"), base_url=server)


def test_offline_is_one_clear_line(tmp_path, mirror, monkeypatch):
    _, files = mirror
    pin(monkeypatch, "mnist", files)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GanforgeError) as err:
        fetch("mnist", str(tmp_path / "data"), base_url=f"http://127.0.0.1:{port}/")
    assert "download failed" in str(err.value) and "\n" not in str(err.value)


def _cifar_tar(tmp_path, write_cifar) -> bytes:
    write_cifar(tmp_path / "src")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


def test_archive_is_unpacked_after_verification(tmp_path, write_cifar, server, monkeypatch):
    data = _cifar_tar(tmp_path, write_cifar)
    (tmp_path / "mirror" / "cifar-10-python.tar.gz").write_bytes(data)
    pin(monkeypatch, "cifar10", {"cifar-10-python.tar.gz": data})
    out = fetch("cifar10", str(tmp_path / "data"), base_url=server)
    assert out == [tmp_path / "data" / "cifar-10-python.tar.gz"]
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").is_file()
    assert len(build_dataset("cifar10", root=str(tmp_path / "data"), split="test")) == 3


def test_zip_slip_is_refused(tmp_path, server, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    data = buf.getvalue()
    (tmp_path / "mirror" / "horse2zebra.zip").write_bytes(data)
    pin(monkeypatch, "horse2zebra", {"horse2zebra.zip": data})
    with pytest.raises(GanforgeError, match="outside"):
        fetch("horse2zebra", str(tmp_path / "data"), base_url=server)
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_and_unpinned_names_refused_without_network(tmp_path):
    with pytest.raises(GanforgeError, match="unknown dataset to fetch"):
        fetch("imagenet", str(tmp_path))
    with pytest.raises(GanforgeError, match="no pinned SHA-256"):
        fetch("facades-pix2pix", str(tmp_path))


def test_pinned_table_is_complete():
    for name in ("mnist", "fashion-mnist", "cifar10", "facades", "horse2zebra"):
        spec = fetch_module.DATASETS[name]
        for f in spec.files:
            assert f.sha256 is not None and len(f.sha256) == 64
            int(f.sha256, 16)
    assert {f.filename for f in fetch_module.DATASETS["mnist"].files} == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    }
