"""Which image files a command reads: folders listed, paths given one by one or as a list.

One implementation for every command that takes images: `reconstruct DIR` lists a folder
(`folder_images`), `classify` takes files and folders (`image_paths`) or a list of paths on
standard input (`read_path_list`, for `-` and `-0`). Folders give their image files (by
extension; hidden files and folders left out) in sorted order, so a run is repeatable; a file
named on its own is kept whatever its name, so the command can say what is wrong with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from fmtool.errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
                              ".ppm", ".pgm"})


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files (by extension) in `folder`, sorted; hidden files and folders are left out."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = [p for p in candidates if is_image_name(p) and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])]
    return sorted(found)


def folder_images(folder: Path, recursive: bool, leave_out: Callable[[Path], bool] | None = None,
                  left_out: str = "") -> list[Path]:
    """`list_images` of `folder` without the files `leave_out` picks; none left is a UserError
    that says why (`left_out` describes what was left out, when it was everything)."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of images")
    found = list_images(folder, recursive)
    files = [f for f in found if leave_out is None or not leave_out(f)]
    if not files:
        hint = "" if recursive else " (add -r to search sub-folders)"
        if found:
            hint = f" other than {len(found)} {left_out}"
        raise UserError(f"no images found in {folder}{hint}")
    return files


def image_paths(paths: Sequence[Path], recursive: bool) -> list[Path]:
    """The files to read for `paths`, in the order given: a folder as its images (sorted; its
    sub-folders' too with `recursive`), anything else as it is (a missing or unreadable file is
    the reading command's to report, file by file). A folder without images stays as itself,
    for the reader to report as that input's error, unless nothing else is given: then it is
    a UserError that says why."""
    if len(paths) == 1 and paths[0].is_dir():
        return folder_images(paths[0], recursive)
    files: list[Path] = []
    for path in paths:
        files += (list_images(path, recursive) or [path]) if path.is_dir() else [path]
    return files


def read_path_list(stream: BinaryIO, null_separated: bool) -> list[Path]:
    """The paths in `stream`: one a line, or separated by NUL bytes with `null_separated` (what
    `find -print0` writes: the only way to pass a name that holds a newline). Names are bytes
    as the file system keeps them (a name that is not UTF-8 survives); empty entries, such as
    the one after a final separator, are skipped."""
    data = stream.read()
    separator = b"\0" if null_separated else b"\n"
    paths = [Path(os.fsdecode(entry)) for entry in data.split(separator) if entry]
    if not paths:
        raise UserError("no paths were given on standard input; give one a line "
                        "(or NUL-separated, as find -print0 writes them)")
    return paths
