"""Read files out of a compiled Qt resource bundle (``.rcc``), without Qt.

GCompris ships its activity pictures (many of them real Wikimedia photos) inside ``.rcc`` files,
so the sample builder needs to list and extract their members. This is a small, read-only
implementation of the binary format written by Qt's ``rcc --binary`` (formats 1 to 3):

Header (big-endian)::

    b"qres" | version:u32 | tree_offset:u32 | data_offset:u32 | names_offset:u32 | [flags:u32 if version >= 3]

Tree: an array of fixed-size nodes; node 0 is the root directory. Each node is::

    name_offset:u32 | flags:u16 | (directory)  child_count:u32 | first_child_index:u32
                                | (file)       territory:u16 | language:u16 | data_offset:u32
    [last_modified_ms:u64 if version >= 2]

so a node is 14 bytes (version 1) or 22 bytes (version 2 and 3). A directory's children are
``child_count`` consecutive nodes starting at ``first_child_index``.

Names: at ``names_offset + name_offset``: ``length:u16 | hash:u32 | length UTF-16BE code units``.

Data: at ``data_offset + node.data_offset``: ``size:u32 | size bytes``. Node flag ``0x01`` means the
payload is ``qCompress`` output (``uncompressed_size:u32`` then a zlib stream); ``0x04`` means a
Zstandard frame, which the Python standard library cannot read, so such members raise a clear
:class:`RccError` rather than returning wrong bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04
# Deep recursion or a cycle in the tree means a damaged file; real bundles are a few levels deep.
_MAX_DEPTH = 64


class RccError(ValueError):
    """A file that is not a readable Qt resource bundle (or a member that cannot be extracted)."""


@dataclass(frozen=True)
class RccMember:
    """One file inside a bundle: its path (``/``-separated, no leading slash) and where its bytes are."""

    path: str
    flags: int
    data_offset: int


class RccArchive:
    """A parsed ``.rcc`` bundle held in memory; :meth:`read` returns a member's original bytes."""

    def __init__(self, data: bytes, name: str = "<rcc>") -> None:
        self.name = name
        self._data = data
        self.version, self._tree, self._payloads, self._names = _parse_header(data, name)
        self._node_size = 14 if self.version == 1 else 22
        self.members: dict[str, RccMember] = {}
        self._walk(0, "", 0)

    @classmethod
    def open(cls, path: str | Path) -> RccArchive:
        """Read and parse the bundle at ``path``."""
        path = Path(path)
        return cls(path.read_bytes(), name=str(path))

    def names(self) -> list[str]:
        """Every file path in the bundle, sorted."""
        return sorted(self.members)

    def read(self, path: str) -> bytes:
        """The uncompressed bytes of the member at ``path`` (as listed by :meth:`names`)."""
        member = self.members.get(path.lstrip("/"))
        if member is None:
            raise RccError(f"{self.name} has no member {path!r}")
        start = self._payloads + member.data_offset
        (size,) = _unpack(">I", self._data, start, self.name)
        payload = self._data[start + 4 : start + 4 + size]
        if len(payload) != size:
            raise RccError(f"{self.name}: member {path!r} is truncated")
        if member.flags & FLAG_COMPRESSED_ZSTD:
            raise RccError(f"{self.name}: member {path!r} is Zstandard-compressed, which this reader does not support")
        if member.flags & FLAG_COMPRESSED:
            return _qt_uncompress(payload, f"{self.name}:{path}")
        return payload

    def _node(self, index: int) -> tuple[int, int, int, int]:
        """(name_offset, flags, a, b) of tree node ``index``; a/b are count/child or locale/data."""
        start = self._tree + index * self._node_size
        name_offset, flags = _unpack(">IH", self._data, start, self.name)
        if flags & FLAG_DIRECTORY:
            count, first = _unpack(">II", self._data, start + 6, self.name)
            return name_offset, flags, count, first
        _locale, data_offset = _unpack(">II", self._data, start + 6, self.name)
        return name_offset, flags, 0, data_offset

    def _walk(self, index: int, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise RccError(f"{self.name}: the resource tree is deeper than {_MAX_DEPTH} levels (damaged file?)")
        _name_offset, flags, count, first = self._node(index)
        if not flags & FLAG_DIRECTORY:
            raise RccError(f"{self.name}: tree node {index} should be a directory")
        for child in range(first, first + count):
            name_offset, child_flags, _count, data_offset = self._node(child)
            path = prefix + self._name(name_offset)
            if child_flags & FLAG_DIRECTORY:
                self._walk(child, path + "/", depth + 1)
            else:
                self.members[path] = RccMember(path=path, flags=child_flags, data_offset=data_offset)

    def _name(self, offset: int) -> str:
        start = self._names + offset
        (length,) = _unpack(">H", self._data, start, self.name)
        raw = self._data[start + 6 : start + 6 + 2 * length]  # skip the u16 length and u32 hash
        if len(raw) != 2 * length:
            raise RccError(f"{self.name}: a file name runs past the end of the file")
        name = raw.decode("utf-16-be")
        if not name or "/" in name or name in (".", ".."):
            raise RccError(f"{self.name}: unsafe member name {name!r}")
        return name


def _parse_header(data: bytes, name: str) -> tuple[int, int, int, int]:
    """Return (version, tree_offset, data_offset, names_offset) after checking the header."""
    if data[:4] != MAGIC:
        raise RccError(f"{name} is not a Qt resource file (it starts with {data[:4]!r}, not {MAGIC!r})")
    version, tree, payloads, names = _unpack(">IIII", data, 4, name)
    if version not in (1, 2, 3):
        raise RccError(f"{name}: Qt resource format version {version} is not supported (1-3 are)")
    for label, offset in (("tree", tree), ("data", payloads), ("names", names)):
        if not 0 < offset < len(data):
            raise RccError(f"{name}: the {label} offset {offset} lies outside the {len(data)}-byte file")
    return version, tree, payloads, names


def _qt_uncompress(payload: bytes, where: str) -> bytes:
    """Undo ``qCompress``: a big-endian u32 with the expected size, then a zlib stream."""
    if len(payload) < 4:
        raise RccError(f"{where}: compressed payload is too short")
    (expected,) = struct.unpack(">I", payload[:4])
    try:
        raw = zlib.decompress(payload[4:])
    except zlib.error as error:
        raise RccError(f"{where}: zlib data is damaged ({error})") from error
    if len(raw) != expected:
        raise RccError(f"{where}: uncompressed {len(raw)} bytes, the header promised {expected}")
    return raw


def _unpack(fmt: str, data: bytes, offset: int, name: str) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error as error:
        raise RccError(f"{name}: unexpected end of file at byte {offset}") from error
