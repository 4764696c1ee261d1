"""Walking a folder tree with an explicit stack: any depth works, and every problem is reported.

``os.walk`` and ``Path.rglob`` recurse once per folder level, so a tree about 1,000 levels deep
ended ``aiornot scan`` with a ``RecursionError`` before it scored anything. :func:`walk_files`
keeps the folders still to visit in a list instead. A folder that cannot be listed (no permission,
or a path longer than the operating system accepts) and a link back to a folder already walked
are yielded as :class:`WalkProblem` rather than skipped or raised, so the caller can write an error
line for each.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class WalkProblem:
    """A folder the walk could not enter; ``code`` is ``unreadable_folder`` or ``symlink_loop``."""

    path: str
    code: str
    message: str


def walk_files(folder: str | Path, *, follow_links: bool = True) -> Iterator[str | WalkProblem]:
    """Every entry under ``folder`` that is not a folder (files, links, pipes …), and the problems met.

    Depth-first, siblings in name order; folder links are followed when ``follow_links`` is set,
    each real folder at most once (a loop of links becomes a ``symlink_loop`` problem).
    """
    stack, seen = [os.fspath(folder)], set()
    while stack:
        root = stack.pop()
        listed = _list(root, seen)
        if isinstance(listed, WalkProblem):
            yield listed
            continue
        folders = []
        for entry in listed:
            if _is_folder(entry, follow_links):
                folders.append(entry.path)
            else:
                yield entry.path
        stack.extend(sorted(folders, reverse=True))  # popped in name order


def _list(root: str, seen: set[tuple[int, int]]) -> list[os.DirEntry] | WalkProblem:
    """The entries of one folder, or why it cannot be listed (a second visit counts as a loop)."""
    try:
        info = os.stat(root)
        identity = (info.st_dev, info.st_ino)
        if identity in seen:
            return WalkProblem(root, "symlink_loop", f"{root} leads back to a folder already scanned (a symbolic link loop)")
        seen.add(identity)
        with os.scandir(root) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        return WalkProblem(root, "unreadable_folder", _why(root, error))


def _is_folder(entry: os.DirEntry, follow_links: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow_links)
    except OSError:
        return False  # a link the OS will not follow: yielded as an entry, and its reader says why


def _why(root: str, error: OSError) -> str:
    if error.errno == errno.ENAMETOOLONG:
        return f"cannot read the folder {root}: its path is longer than the operating system accepts ({error.strerror})"
    return f"cannot read the folder {root}: {error.strerror or error}"
