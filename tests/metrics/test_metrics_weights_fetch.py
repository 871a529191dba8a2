"""fetch_inception_weights: explicit download (file:// and a local HTTP server), hash check, atomic."""
import functools
import hashlib
import http.server
import threading

import pytest

from ganforge.errors import GanforgeError
from ganforge.metrics import INCEPTION_FILENAME, INCEPTION_SHA256, fetch_inception_weights

PAYLOAD = b"pretend these are inception weights\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src" / "weights.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    return src


def test_file_url_into_folder(source, tmp_path):
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    got = fetch_inception_weights(str(dest_dir), url=source.as_uri(), expected_sha256=PAYLOAD_SHA)
    assert got == dest_dir / INCEPTION_FILENAME and got.read_bytes() == PAYLOAD
    assert [p.name for p in dest_dir.iterdir()] == [INCEPTION_FILENAME]
    # Already present and intact: no download (the URL is now unreachable).
    assert fetch_inception_weights(str(dest_dir), url="file:///nonexistent", expected_sha256=PAYLOAD_SHA) == got


def test_http_from_localhost(source, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/weights.bin"
        dest = tmp_path / "out" / "w.pth"
        assert fetch_inception_weights(str(dest), url=url, expected_sha256=PAYLOAD_SHA).read_bytes() == PAYLOAD
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_hash_is_refused_and_nothing_is_left(source, tmp_path):
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    with pytest.raises(GanforgeError) as e:
        fetch_inception_weights(str(dest_dir), url=source.as_uri())  # pinned hash of the real file
    assert INCEPTION_SHA256 in str(e.value) and PAYLOAD_SHA in str(e.value)
    assert list(dest_dir.iterdir()) == []


def test_unreachable_url_is_a_user_error(tmp_path):
    with pytest.raises(GanforgeError, match="could not download"):
        fetch_inception_weights(str(tmp_path) + "/", url="http://127.0.0.1:9/none")
    assert list(tmp_path.iterdir()) == []


def test_cli_fetch_vgg19_refuses_a_file_with_the_wrong_hash_naming_both(source, tmp_path, capsys):
    from ganforge.cli import main

    code = main(["weights", "fetch", "vgg19", "--to", str(tmp_path / "w"), "--url", source.as_uri()])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "dcbb9e9d" in err[0] and PAYLOAD_SHA in err[0]  # the pinned and the actual hash
    assert not (tmp_path / "w" / "vgg19-dcbb9e9d.pth").exists()
