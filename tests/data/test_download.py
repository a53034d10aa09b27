"""download(), against a local HTTP server on 127.0.0.1 serving archives made by the tests."""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from zcnas.data import load_arrays
from zcnas.errors import CorruptDataError, UnknownNameError, UserError

from ._writers import tar_gz_of, write_cifar10, write_cifar100

dl = importlib.import_module("zcnas.data.download")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve ``tmp_path / 'www'`` on 127.0.0.1; yields (folder, base url)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def cifar10_archive(tmp_path, server):
    """The official cifar-10-python.tar.gz layout, tiny; yields (url, md5, expected arrays)."""
    www, base = server
    expected = write_cifar10(tmp_path / "src" / "cifar-10-batches-py", n=3)
    (tmp_path / "src" / "cifar-10-batches-py" / "readme.html").write_text("<html></html>")
    blob = tar_gz_of(tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py")
    (www / "cifar-10-python.tar.gz").write_bytes(blob)
    return f"{base}/cifar-10-python.tar.gz", hashlib.md5(blob).hexdigest(), expected


def test_download_verifies_extracts_and_loads(tmp_path, cifar10_archive):
    url, md5, expected = cifar10_archive
    root = tmp_path / "data"
    folder = dl.download("cifar10", root, url=url, md5=md5, timeout=10)
    assert folder == root / "cifar-10-batches-py"
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # no leftovers
    arrays = load_arrays("cifar10", "train", root=root)
    np.testing.assert_array_equal(arrays.x, expected["train"][0])
    np.testing.assert_array_equal(arrays.y, expected["train"][1])
    assert arrays.source == str(folder.resolve())


def test_checksum_mismatch_removes_the_download(tmp_path, cifar10_archive):
    url, _, _ = cifar10_archive
    root = tmp_path / "data"
    # no md5 given: the official checksum, which the fixture does not have
    with pytest.raises(CorruptDataError) as info:
        dl.download("cifar10", root, url=url, timeout=10)
    message = str(info.value)
    assert "\n" not in message and "checksum mismatch" in message
    assert dl.ARCHIVES["cifar10"].md5 in message
    assert list(root.iterdir()) == []


def test_default_source_comes_from_the_archive_table(tmp_path, server, monkeypatch):
    www, base = server
    expected = write_cifar100(tmp_path / "src" / "cifar-100-python", n=4)
    blob = tar_gz_of(tmp_path / "src" / "cifar-100-python", "cifar-100-python")
    (www / "c100.tar.gz").write_bytes(blob)
    table = dict(dl.ARCHIVES)
    table["cifar100"] = dl.Archive(
        url=f"{base}/c100.tar.gz",
        md5=hashlib.md5(blob).hexdigest(),
        folder="cifar-100-python",
        files=("train", "test"),
    )
    monkeypatch.setattr(dl, "ARCHIVES", table)
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path / "env-root"))
    folder = dl.download("cifar100", None, timeout=10)
    assert folder == tmp_path / "env-root" / "cifar-100-python"
    np.testing.assert_array_equal(load_arrays("cifar100", "test").y, expected["test"][1])


def test_official_sources():
    assert dl.ARCHIVES["cifar10"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert dl.ARCHIVES["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert dl.ARCHIVES["cifar100"].url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert dl.ARCHIVES["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def _evil_archive(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        if kind == "escape":
            payload = b"escaped"
            info = tarfile.TarInfo("cifar-10-batches-py/../../evil.txt")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        elif kind == "absolute":
            info = tarfile.TarInfo("/tmp/zcnas-test-evil.txt")
            tar.addfile(info, io.BytesIO(b""))
        else:
            info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["escape", "absolute", "symlink"])
def test_unsafe_archive_is_refused(tmp_path, server, kind):
    www, base = server
    blob = _evil_archive(kind)
    (www / "evil.tar.gz").write_bytes(blob)
    root = tmp_path / "data"
    with pytest.raises(CorruptDataError, match="refusing to extract"):
        dl.download("cifar10", root, url=f"{base}/evil.tar.gz", md5=hashlib.md5(blob).hexdigest())
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()
    assert list(root.iterdir()) == []


def test_archive_without_the_expected_folder_is_corrupt(tmp_path, server):
    www, base = server
    write_cifar10(tmp_path / "src" / "other", n=1)
    blob = tar_gz_of(tmp_path / "src" / "other", "other")
    (www / "other.tar.gz").write_bytes(blob)
    with pytest.raises(CorruptDataError, match="cifar-10-batches-py"):
        dl.download(
            "cifar10",
            tmp_path / "data",
            url=f"{base}/other.tar.gz",
            md5=hashlib.md5(blob).hexdigest(),
        )


def test_http_error_is_a_one_line_user_error(tmp_path, server):
    _, base = server
    with pytest.raises(UserError) as info:
        dl.download("cifar10", tmp_path / "data", url=f"{base}/missing.tar.gz", timeout=10)
    message = str(info.value)
    assert "\n" not in message and "missing.tar.gz" in message and "failed" in message
    assert list((tmp_path / "data").iterdir()) == []


def test_existing_folder_is_returned_without_fetching(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    # port 9 (discard) on loopback: nothing listens, so any fetch would fail
    assert dl.download("cifar10", tmp_path, url="http://127.0.0.1:9/x.tar.gz") == folder


def test_imagenet16_says_where_to_get_it(tmp_path):
    with pytest.raises(UserError) as info:
        dl.download("ImageNet16-120", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "image-net.org" in message
    assert str(tmp_path / "ImageNet16") in message
    assert not isinstance(info.value, UnknownNameError)


def test_download_needs_a_root(no_env_roots):
    with pytest.raises(UserError, match="ZCNAS_DATA"):
        dl.download("cifar10", None)


def test_download_of_an_unknown_dataset():
    with pytest.raises(UnknownNameError):
        dl.download("mnist", Path("."))
