"""Which bags a `sam2_ros label` run covers, and where each one's prompts and outputs go.

Arguments may be bag folders, folders of bags, an MCAP file, globs, or text files listing any
of these (one per line, ``#`` comments, relative to the list's folder). Each bag's outputs go
to ``OUT/<bag name>/``; its prompts come from ``<bag>.prompts.yaml`` beside it, else from the
one prompts file given for all.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

PROMPTS_SUFFIX = ".prompts.yaml"


class BagListError(ValueError):
    """An argument that names no bag; the message says which and why."""


@dataclass(frozen=True)
class BagJob:
    """One bag to label: where it is, its prompts file (None: detections only), its name."""

    bag: Path
    prompts: Path | None
    name: str


def looks_like_bag(path: Path) -> bool:
    """A rosbag2 folder (metadata.yaml or storage files) or a single MCAP file."""
    if path.is_file():
        return path.suffix == ".mcap"
    if not path.is_dir():
        return False
    if (path / "metadata.yaml").is_file():
        return True
    return any(p.suffix in (".db3", ".mcap") for p in path.iterdir() if p.is_file())


def _expand(argument: str, base: Path, seen_lists: set[Path]) -> list[Path]:
    """The bags one argument names."""
    path = base / argument
    if any(c in argument for c in "*?["):
        found = sorted(Path(p) for p in glob.glob(str(path)))
        bags = [p for p in found if looks_like_bag(p)]
        if not bags:
            raise BagListError(f"{argument}: the pattern matches no bag")
        return bags
    if looks_like_bag(path):
        return [path]
    if path.is_dir():
        bags = sorted(p for p in path.iterdir() if looks_like_bag(p))
        if not bags:
            raise BagListError(f"{argument}: a folder with no bag in it")
        return bags
    if path.is_file():
        return _read_list(path, seen_lists)
    raise BagListError(f"{argument}: no such bag, folder, pattern or list file")


def _read_list(path: Path, seen_lists: set[Path]) -> list[Path]:
    if path.resolve() in seen_lists:
        raise BagListError(f"{path}: the list file includes itself")
    seen_lists.add(path.resolve())
    bags: list[Path] = []
    for line in path.read_text(errors="replace").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            bags += _expand(entry, path.parent, seen_lists)
    if not bags:
        raise BagListError(f"{path}: a list file naming no bag")
    return bags


def bag_name(bag: Path) -> str:
    """The output folder's name: the bag folder's name, or the MCAP file's stem."""
    return bag.stem if bag.is_file() else bag.name


def find_jobs(arguments: list[str], shared_prompts: Path | None = None) -> list[BagJob]:
    """Every bag the arguments name, once each, in order.

    Raises:
        BagListError: an argument names nothing, or two bags would share an output name.
    """
    jobs: list[BagJob] = []
    by_name: dict[str, Path] = {}
    for argument in arguments:
        for bag in _expand(argument, Path(), set()):
            name = bag_name(bag)
            if name in by_name:
                if by_name[name].resolve() == bag.resolve():
                    continue
                raise BagListError(f"two bags named {name}: {by_name[name]} and {bag} "
                                   f"(their outputs would share OUT/{name}); rename one")
            by_name[name] = bag
            beside = bag.parent / (bag_name(bag) + PROMPTS_SUFFIX)
            jobs.append(BagJob(bag, beside if beside.is_file() else shared_prompts, name))
    return jobs
