"""Where P3M-Net's weights come from: --weights, $P3M_LIVE_WEIGHTS, the user cache,
or (explicitly allowed) a download of the official release checkpoint.

The download is the only network access p3m-live ever makes. It goes to a
temporary file beside the target and is renamed only when complete, so an
interrupted download never leaves a truncated checkpoint in the cache.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import P3MError
from ..terminal import is_terminal, say

WEIGHTS_ENV = "P3M_LIVE_WEIGHTS"
RELEASE_NAME = "p3mnet_pretrained_on_p3m10k.pth"
GDRIVE_ID = "1smX2YQGIpzKbfwDYHAwete00a_YMwoG1"
RELEASE_URL = f"https://drive.usercontent.google.com/download?id={GDRIVE_ID}&export=download&confirm=t"
MANUAL_URL = f"https://drive.google.com/file/d/{GDRIVE_ID}/view"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/p3m-live`` (``~/.cache/p3m-live`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "p3m-live"


def cached_weights_path() -> Path:
    return cache_dir() / RELEASE_NAME


def resolve_weights(explicit: str | os.PathLike | None = None, download: bool = True, url: str = RELEASE_URL) -> Path:
    """The checkpoint to use, in order: explicit path, environment, cache, download."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise P3MError(f"weights file not found: {p}")
        return p
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise P3MError(f"${WEIGHTS_ENV} points to {p}, which does not exist")
        return p
    cached = cached_weights_path()
    if cached.is_file():
        return cached
    if not download:
        raise P3MError(missing_weights_message(cached))
    return download_file(url, cached)


def missing_weights_message(target: Path) -> str:
    return (
        f"P3M-Net weights not found and cannot be downloaded: get {RELEASE_NAME} from "
        f"{MANUAL_URL} and put it at {target} (or pass --weights PATH); "
        "or use the fast model: --model fast (p3m-live weights fetch fast)"
    )


def _progress_bar(done: int, total: int | None, finished: bool = False) -> None:
    """The download's bar, redrawn in place on a terminal (a log file would get a copy of it
    per megabyte)."""
    if not is_terminal():
        return
    if total:
        bar = "#" * int(30 * done / total)
        line = f"\rdownloading weights [{bar:<30}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB"
    else:
        line = f"\rdownloading weights {done / 1e6:6.1f} MB"
    say(line + ("\n" if finished else ""))


def download_file(
    url: str,
    target: Path,
    timeout: float = 30.0,
    progress: Callable[[int, int | None, bool], None] | None = _progress_bar,
) -> Path:
    """Stream ``url`` into ``target`` through a temporary file renamed when complete;
    ``progress(done, total, finished)`` is told of each megabyte, and of the end."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            if (resp.headers.get("Content-Type") or "").startswith("text/html"):
                raise P3MError(
                    missing_weights_message(target).replace(
                        "cannot be downloaded", "the download returned a web page, not the file"
                    )
                )
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total, False)
            if progress:
                progress(done, total, True)
            if total is not None and done != total:
                raise P3MError(f"download of {target.name} stopped at {done} of {total} bytes; try again")
        os.replace(tmp, target)
        return target
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise P3MError(missing_weights_message(target) + f" [{e}]") from e
    finally:
        tmp.unlink(missing_ok=True)
