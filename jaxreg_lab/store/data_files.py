"""The file side of the real data sets (:mod:`jaxreg_lab.datasets`): checksums, reading a
file or the members of an archive, and resumable downloads moved into place only once
verified. Every error is a :class:`DataError`, one line naming the file.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from jaxreg_lab.errors import UsageError
from jaxreg_lab.store.files import rename

CHUNK_BYTES = 1 << 20


class DataError(UsageError):
    """A data file that is missing, corrupt, truncated or fails its checksum: one line
    naming the file and how to get it (the command line prints it, exit code 2)."""


def md5sum(path: Path) -> str:
    """The MD5 hex digest of a file, read in chunks of ``CHUNK_BYTES``."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def read_file(path: Path) -> bytes:
    """A file's bytes."""
    return Path(path).read_bytes()


def archive_members(path: Path, members: Sequence[str]) -> dict[str, bytes]:
    """The bytes of ``members`` of a ``.tar.gz`` or ``.zip`` archive, read without
    extracting anything to disk.

    Arguments:
        path: the archive (its suffix says which kind).
        members: the member names.

    Returns:
        {member: bytes}; raises :class:`DataError` when the archive cannot be read or
        lacks a member (or it is not a regular file).
    """
    out = {}
    try:
        if str(path).endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                for m in members:
                    if m not in names:
                        raise DataError(f"{path}: the archive lacks {m}")
                    out[m] = archive.read(m)
            return out
        with tarfile.open(path, "r:gz") as archive:
            names = set(archive.getnames())
            for m in members:
                if m not in names:
                    raise DataError(f"{path}: the archive lacks {m}")
                info = archive.getmember(m)
                stream = archive.extractfile(info) if info.isfile() else None
                if stream is None:
                    raise DataError(f"{path}: {m} is not a regular file")
                out[m] = stream.read()
        return out
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable archive ({e})") from None


def _open(url: str, offset: int) -> tuple[io.RawIOBase | io.BufferedIOBase, int | None, int]:
    """A stream of ``url`` from byte ``offset`` on: (stream, total size or None, the offset
    it actually starts at: 0 where a server ignores the Range request)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        source = Path(urllib.request.url2pathname(parsed.path))
        stream = open(source, "rb")
        stream.seek(offset)
        return stream, source.stat().st_size, offset
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    response = urllib.request.urlopen(request, timeout=30)
    start = offset if response.status == 206 else 0
    length = response.headers.get("Content-Length")
    return response, (start + int(length)) if length is not None else None, start


def _append(url: str, part: Path, progress: bool) -> None:
    """Append ``url``'s bytes to ``part`` from its current size on (from the start again
    where the server cannot resume), with a tqdm bar."""
    from tqdm.auto import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    stream, total, start = _open(url, offset)
    with stream, open(part, "r+b" if part.exists() else "wb") as out:
        out.truncate(start)
        out.seek(start)
        name = url.rsplit("/", 1)[-1]
        with tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
            for block in iter(lambda: stream.read(CHUNK_BYTES), b""):
                out.write(block)
                bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
        if total is not None and out.tell() < total:  # a server that closed early: resumable, not complete
            raise ConnectionError(f"the connection closed after {out.tell()} of {total} bytes")


def download(url: str, dest: Path, md5: str, part: Path, *, progress: bool, hint: str) -> None:
    """Download ``url`` to ``dest``: into ``part`` first (continuing what an interrupted
    download left there), then, only once its MD5 is ``md5``, renamed to ``dest``.

    Arguments:
        url: an http(s) or file URL.
        dest: the final path.
        md5: the published MD5 of the file.
        part: where the partial file waits (in a directory that nothing reads as data,
            removed when empty).
        progress: show a progress bar.
        hint: the end of the error line: where the file could be put by hand.

    Returns:
        None; raises :class:`DataError` when the download fails (the partial file is
        kept to resume) or its MD5 differs (the partial file is deleted).
    """
    try:
        _append(url, part, progress)
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        kept = part.stat().st_size if part.exists() else 0
        _remove_empty(part.parent)
        resume = f"{kept} bytes kept in {part}, run the fetch again to resume, or " if kept else ""
        raise DataError(f"could not download {dest} from {url} ({reason}); {resume}{hint}") from None
    got = md5sum(part)
    if got != md5:
        part.unlink()
        _remove_empty(part.parent)
        raise DataError(
            f"{url}: the download's MD5 {got} differs from the published {md5}, so it was deleted; "
            f"put {dest.name} with that MD5 in {dest.parent}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    rename(part, dest)
    _remove_empty(part.parent)


def _remove_empty(directory: Path) -> None:
    """Remove ``directory`` if it exists and is empty."""
    if directory.is_dir() and not any(directory.iterdir()):
        shutil.rmtree(directory)
