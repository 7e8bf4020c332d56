"""Which bags `sam2_ros label` covers: folders, folders of bags, globs and list files; each
bag's prompts (beside it, else the shared file) and output name; clear errors otherwise.
Bag folders here are only their layout (metadata.yaml): nothing is read from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2_ros.fleet.bag_list import BagListError, find_jobs


def _bag(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    return path


def test_folders_globs_and_list_files_name_each_bag_once(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _bag(tmp_path / "fleet" / "a"), _bag(tmp_path / "fleet" / "b")
    c = _bag(tmp_path / "other" / "c")
    (tmp_path / "other" / "d.mcap").write_bytes(b"")
    listing = tmp_path / "bags.txt"
    listing.write_text("# robot 3\nother/c\n\nother/*.mcap  # the MCAP one\n")
    monkeypatch.chdir(tmp_path)
    jobs = find_jobs(["fleet", str(b), str(listing), "other/c*"])
    assert [(j.name, j.bag.resolve()) for j in jobs] == [
        ("a", a.resolve()), ("b", b.resolve()), ("c", c.resolve()),
        ("d", (tmp_path / "other" / "d.mcap").resolve())]


def test_prompts_beside_a_bag_win_over_the_shared_file(tmp_path: Path) -> None:
    _bag(tmp_path / "a")
    _bag(tmp_path / "b")
    beside = tmp_path / "a.prompts.yaml"
    beside.write_text("prompts: []\n")
    shared = tmp_path / "all.yaml"
    jobs = {j.name: j.prompts for j in find_jobs([str(tmp_path)], shared)}
    assert jobs == {"a": beside, "b": shared}
    assert {j.name: j.prompts for j in find_jobs([str(tmp_path)])} == {"a": beside, "b": None}


def test_what_names_no_bag_is_an_error_saying_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _bag(tmp_path / "x" / "run")
    _bag(tmp_path / "y" / "run")
    (tmp_path / "loop.txt").write_text("loop.txt\n")
    cases = {
        str(tmp_path / "missing"): "no such bag",
        str(tmp_path / "empty"): "no bag in it",
        str(tmp_path / "empty" / "*"): "matches no bag",
        str(tmp_path / "loop.txt"): "includes itself",
    }
    for argument, message in cases.items():
        with pytest.raises(BagListError, match=message):
            find_jobs([argument])
    with pytest.raises(BagListError, match="two bags named run"):
        find_jobs([str(tmp_path / "x" / "run"), str(tmp_path / "y" / "run")])
