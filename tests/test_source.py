"""The corpus download, against a local HTTP server and file:// URLs (never the network)."""

import hashlib
import http.server
import threading
import zipfile
from functools import partial

import pytest

from lyricgen.data.source import download, ensure_file, read_songs
from lyricgen.errors import LyricgenError


@pytest.fixture
def served(tmp_path):
    """A zip corpus served by a local HTTP server: (url, sha256, requests log)."""
    root = tmp_path / "www"
    root.mkdir()
    with zipfile.ZipFile(root / "corpus.zip", "w") as zf:
        zf.writestr("lyrics.txt", "星星 在天上\n我爱你\n")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sha = hashlib.sha256((root / "corpus.zip").read_bytes()).hexdigest()
    yield f"http://127.0.0.1:{server.server_port}/corpus.zip", sha, requests
    server.shutdown()


def test_download_from_local_server_verifies_checksum(tmp_path, served):
    url, sha, requests = served
    dest = tmp_path / "data" / "corpus.zip"
    ensure_file(dest, url, sha)
    assert dest.is_file() and requests == ["/corpus.zip"]
    songs, _ = read_songs(dest)
    assert songs == [["星星 在天上", "我爱你"]]
    ensure_file(dest, url, sha)  # present with the right checksum: no second request
    assert requests == ["/corpus.zip"]


def test_checksum_mismatch_is_refused_and_nothing_is_left(tmp_path, served):
    url, _, _ = served
    dest = tmp_path / "data" / "corpus.zip"
    with pytest.raises(LyricgenError, match=f"expected {'0' * 64}.*put it at {dest}"):
        download(url, dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []  # no half file, no temporary file


def test_failed_download_says_where_to_put_the_file(tmp_path, served):
    url, sha, _ = served
    dest = tmp_path / "corpus.zip"
    with pytest.raises(LyricgenError, match="could not download.*put it at"):
        ensure_file(dest, url.replace("corpus.zip", "missing.zip"), sha)
    assert not dest.exists()


def test_file_url_and_wrong_local_file(tmp_path, served):
    url, sha, _ = served
    src = tmp_path / "www" / "corpus.zip"
    dest = tmp_path / "copy.zip"
    ensure_file(dest, src.as_uri(), sha)
    assert dest.read_bytes() == src.read_bytes()
    dest.write_bytes(b"not the corpus")
    with pytest.raises(LyricgenError, match="has sha256"):
        ensure_file(dest, url, sha)
    assert dest.read_bytes() == b"not the corpus"  # the user's file is left alone


def test_folder_of_songs_in_sorted_order(tmp_path):
    (tmp_path / "b.txt").write_text("第二首\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("第一首\n\n副歌\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    songs, _ = read_songs(tmp_path)
    assert songs == [["第一首", "副歌"], ["第二首"]]


def test_other_encodings(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("星星在天上\n".encode("gbk"))
    with pytest.raises(LyricgenError, match="not valid utf-8.*data.encoding"):
        read_songs(path)
    assert read_songs(path, encoding="gbk")[0] == [["星星在天上"]]
