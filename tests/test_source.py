"""The corpus download, against a local HTTP server and file:// URLs (never the network)."""

import hashlib
import http.server
import json
import threading
import zipfile
from functools import partial

import pytest

from lyricgen.data.source import corpus_digest, download, ensure_file, ensure_files, read_songs
from lyricgen.errors import LyricgenError
from tests.conftest import REAL_CI, write_songci

pytestmark = pytest.mark.portable  # also run inside the simulation of macOS and Windows (.ci/run)


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


def test_songci_folder_reads_each_ci_with_its_title_line_in_the_collections_order(tmp_path):
    folder = write_songci(tmp_path / "songci", copies=2, files=3)
    (folder / "ci.song.10000.json").write_text(  # after ci.song.2000.json, as the collection numbers them
        json.dumps([{"rhythmic": "点绛唇", "paragraphs": ["新月娟娟，夜寒江静山衔斗。"]}], ensure_ascii=False),
        encoding="utf-8",
    )
    songs, digest = read_songs(folder, format="songci")
    assert len(songs) == 2 * len(REAL_CI) + 1
    assert songs[0] == ["《浣溪沙》", *REAL_CI[0]["paragraphs"]]
    assert songs[3][0] == "《菩萨蛮》" and songs[3][1] == "山光冷浸清溪底。"
    assert songs[-1] == ["《点绛唇》", "新月娟娟，夜寒江静山衔斗。"]
    assert digest == corpus_digest(folder, format="songci")  # what the token cache is keyed by, from the bytes


def test_songci_errors_name_the_fix(tmp_path):
    with pytest.raises(LyricgenError, match="not a folder of chinese-poetry JSON files"):
        read_songs(tmp_path, format="songci")
    (tmp_path / "ci.song.0.json").write_text('{"not": "a list of records"}', encoding="utf-8")
    with pytest.raises(LyricgenError, match="is not a chinese-poetry JSON file .* downloaded again"):
        read_songs(tmp_path, format="songci")


def test_a_corpus_of_several_files_is_downloaded_and_checked_file_by_file(tmp_path):
    source = write_songci(tmp_path / "served", files=2)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(source.glob("*.json"))}
    dest = tmp_path / "data" / "songci"
    ensure_files(dest, source.as_uri(), files)
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    assert read_songs(dest, format="songci")[0] == read_songs(source, format="songci")[0]
    (dest / "ci.song.0.json").write_text("[]", encoding="utf-8")  # a damaged file is refused, not used
    with pytest.raises(LyricgenError, match="ci.song.0.json has sha256 .* expected"):
        ensure_files(dest, source.as_uri(), files)
    (dest / "ci.song.0.json").unlink()  # a missing one is fetched again
    ensure_files(dest, source.as_uri(), files)
    assert (dest / "ci.song.0.json").read_bytes() == (source / "ci.song.0.json").read_bytes()
