"""Explicit download of the official CIFAR archives; never called implicitly.

``download('cifar10', root)`` streams the official archive to a temporary file inside ``root``,
checks its md5, extracts it into a temporary folder inside ``root`` (refusing any member that is
not a plain file or folder, or whose path leaves that folder) and moves ``cifar-10-batches-py``
(or ``cifar-100-python``) into place, so an existing folder is always complete. If the folder is
already there nothing is fetched. ``url`` replaces the source (a mirror, or a local server in
tests); ``md5`` replaces the expected checksum.

ImageNet16-120 has no public direct URL: :func:`download` says where to get it.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tqdm.auto import tqdm

from zcnas._io import check_output_dir
from zcnas.data import formats
from zcnas.datasets import DatasetSpec, get_dataset
from zcnas.errors import CorruptDataError, UnknownNameError, UserError
from zcnas.paths import ENV_DATA, data_roots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Archive:
    """An official dataset archive and the folder it unpacks to."""

    url: str
    md5: str
    folder: str
    files: tuple[str, ...]


ARCHIVES: Mapping[str, Archive] = MappingProxyType(
    {
        "cifar10": Archive(
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            md5="c58f30108f718f92721af3b95e74349a",
            folder="cifar-10-batches-py",
            files=(*formats.CIFAR10_FILES["train"], *formats.CIFAR10_FILES["test"]),
        ),
        "cifar100": Archive(
            url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            md5="eb9058c3a382ffc7106e4002c42a8d85",
            folder="cifar-100-python",
            files=(*formats.CIFAR100_FILES["train"], *formats.CIFAR100_FILES["test"]),
        ),
    }
)

IMAGENET16_HELP = (
    "ImageNet16-120 has no public direct download: get the 16x16 'Downsampled ImageNet' files "
    "(Imagenet16_train.zip, Imagenet16_val.zip) from https://image-net.org/download-images "
    "(free account) or via the NATS-Bench README (https://github.com/D-X-Y/NATS-Bench), and unpack "
    "train_data_batch_1..10 and val_data into {folder}"
)

_CHUNK = 1 << 20


def _resolve_root(root: str | os.PathLike | None) -> Path:
    roots = data_roots(root, must_exist=False)
    if not roots:
        raise UserError(f"no data folder to download into; pass --data PATH or set {ENV_DATA}")
    return roots[0]


def _fetch(url: str, target: Path, timeout: float) -> str:
    """Stream ``url`` into ``target``; return the md5 hex digest of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, target.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=Path(url).name, disable=None
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        if isinstance(e, urllib.error.HTTPError):
            e.close()  # it holds the response's socket
        reason = getattr(e, "reason", None) or e
        raise UserError(
            f"download of {url} failed ({reason}); check the network or pass url= a mirror"
        ) from e
    return digest.hexdigest()


def _safe_extract(archive: Path, into: Path) -> None:
    """Extract ``archive`` into ``into``, refusing links, devices and paths that leave it."""
    base = into.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                target = (base / m.name).resolve()
                if not (m.isfile() or m.isdir()) or not target.is_relative_to(base):
                    raise CorruptDataError(
                        f"{archive.name}: refusing to extract {m.name!r} "
                        "(not a plain file or folder inside the target folder)"
                    )
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(base, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise CorruptDataError(f"{archive.name} is not a readable tar archive ({e})") from e


def download(
    dataset: str | DatasetSpec,
    root: str | os.PathLike | None,
    *,
    url: str | None = None,
    md5: str | None = None,
    timeout: float = 60,
) -> Path:
    """Fetch, verify and extract the official archive of ``dataset`` into ``root``.

    ``root=None`` means ``$ZCNAS_DATA`` (then ``$TORCH_HOME``). Returns the extracted folder
    (``root/cifar-10-batches-py`` or ``root/cifar-100-python``), at once if it already exists.
    Raises :class:`CorruptDataError` on a checksum mismatch (the download is removed) or an
    unsafe or malformed archive, and :class:`UserError` when the download fails or for
    ImageNet16-120, which has no public direct URL.
    """
    spec = get_dataset(dataset)
    if spec.name == "ImageNet16-120":
        roots = data_roots(root, must_exist=False)
        folder = roots[0] / "ImageNet16" if roots else f"${ENV_DATA}/ImageNet16"
        raise UserError(IMAGENET16_HELP.format(folder=folder))
    if spec.name not in ARCHIVES:
        raise UnknownNameError(
            f"no download for dataset {spec.name!r}; downloads exist for {', '.join(ARCHIVES)}"
        )
    if url is not None and not str(url).strip():
        raise UserError("--url is empty; give the URL of the archive, or leave --url out for "
                        "the official one")
    base = check_output_dir(_resolve_root(root), "--data")
    archive = ARCHIVES[spec.name]
    dest = base / archive.folder
    if dest.exists():
        log.info("%s already present at %s; nothing downloaded", spec.name, dest)
        return dest
    src = url or archive.url
    expected = (md5 or archive.md5).lower()
    fd, part_name = tempfile.mkstemp(dir=base, prefix=f".{archive.folder}-", suffix=".part")
    os.close(fd)
    part = Path(part_name)
    try:
        log.info("downloading %s from %s", spec.name, src)
        got = _fetch(src, part, timeout)
        if got != expected:
            raise CorruptDataError(
                f"checksum mismatch for {src}: md5 {got}, expected {expected}; "
                "the download was removed, try again or use another mirror"
            )
        staging = Path(tempfile.mkdtemp(dir=base, prefix=f".{archive.folder}-extract-"))
        try:
            _safe_extract(part, staging)
            extracted = staging / archive.folder
            missing = [f for f in archive.files if not (extracted / f).is_file()]
            if missing:
                raise CorruptDataError(
                    f"{src} does not unpack to {archive.folder}/ with {', '.join(missing)}"
                )
            os.replace(extracted, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        part.unlink(missing_ok=True)
    log.info("%s extracted to %s", spec.name, dest)
    return dest
