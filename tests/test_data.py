"""Tensor cache, splits, loaders and the folder source, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from astro_exp.data.cache import build_cache, resize_image
from astro_exp.data.imageset import ImageSet
from astro_exp.data.loaders import CachedBatches, make_loader
from astro_exp.data.splits import TEST, TRAIN, VAL, stratified_split
from astro_exp.errors import ConfigError, DataError
from astro_exp.imageio import read_image
from astro_exp.sources.folder import FolderSource


def counting_imageset(n: int = 12, fingerprint: str = "fp") -> tuple[ImageSet, list[int]]:
    calls: list[int] = []

    def load(i: int, size: int) -> np.ndarray:
        calls.append(i)
        return np.full((40, 30, 3), i * 10, dtype=np.uint8)

    return ImageSet(
        "toy",
        ["a", "b"],
        "multiclass",
        [f"x{i}" for i in range(n)],
        np.arange(n) % 2,
        fingerprint,
        load,
    ), calls


def test_cache_decodes_once_and_is_reused(tmp_path: Path) -> None:
    imageset, calls = counting_imageset()
    arr, failed = build_cache(imageset, 16, "squash", tmp_path, progress=False)
    assert arr.shape == (12, 3, 16, 16) and arr.dtype == np.uint8 and not failed
    assert isinstance(arr, np.memmap)
    assert sorted(calls) == list(range(12))
    assert arr[5].min() == arr[5].max() == 50
    calls.clear()
    again, _ = build_cache(imageset, 16, "squash", tmp_path, progress=False)
    assert calls == [] and np.array_equal(again, arr)
    # another size or content gets its own cache
    build_cache(imageset, 20, "squash", tmp_path, progress=False)
    assert len(calls) == 12
    other, calls2 = counting_imageset(fingerprint="changed")
    build_cache(other, 16, "squash", tmp_path, progress=False)
    assert len(calls2) == 12
    assert not list(tmp_path.glob("*.tmp-*")), "no temporary files left behind"


def test_cache_build_killed_midway_leaves_no_cache(tmp_path: Path) -> None:
    imageset, _ = counting_imageset()
    original = imageset.load

    def boom(i: int, size: int) -> np.ndarray:
        if i == 7:
            raise KeyboardInterrupt
        return original(i, size)

    imageset.load = boom
    with pytest.raises(KeyboardInterrupt):
        build_cache(imageset, 16, "squash", tmp_path, progress=False, num_threads=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("policy", ["squash", "crop", "pad"])
def test_resize_policies(policy: str) -> None:
    img = np.zeros((40, 80, 3), dtype=np.uint8)
    img[:, :40] = 255  # left half white
    out = resize_image(img, 20, policy)
    assert out.shape == (20, 20, 3)
    if policy == "pad":
        assert out[:5].max() == 0 and out[-5:].max() == 0  # letterbox bars
    if policy == "crop":
        assert out[:, :8].mean() > 200 and out[:, -8:].mean() < 50
    with pytest.raises(ConfigError):
        resize_image(img, 20, "stretchy")


def test_stratified_split_is_deterministic_and_covers_classes() -> None:
    targets = np.repeat(np.arange(4), 25)
    a = stratified_split(targets, 0.2, 0.2, seed=1)
    assert np.array_equal(a, stratified_split(targets, 0.2, 0.2, seed=1))
    assert not np.array_equal(a, stratified_split(targets, 0.2, 0.2, seed=2))
    for c in range(4):
        got = a[targets == c]
        assert (got == VAL).sum() == 5 and (got == TEST).sum() == 5 and (got == TRAIN).sum() == 15
    with pytest.raises(ConfigError):
        stratified_split(targets, 0.6, 0.5, seed=0)


def test_loader_yields_uint8_batches_and_epoch_order_depends_on_seed_and_epoch() -> None:
    images = np.arange(20 * 3 * 4 * 4, dtype=np.uint8).reshape(20, 3, 4, 4)
    ds = CachedBatches(images, np.arange(20) % 2)
    loader = make_loader(ds, np.arange(20), batch_size=8, shuffle=True, seed=3)

    def epoch_ids(e: int) -> list[int]:
        loader.sampler.set_epoch(e)
        out = []
        for x, y, ids in loader:
            assert x.dtype == torch.uint8 and x.shape[1:] == (3, 4, 4)
            assert torch.equal(y, ids % 2)
            assert torch.equal(x, torch.from_numpy(images[ids.numpy()]))
            out += ids.tolist()
        return out

    e0, e0_again, e1 = epoch_ids(0), epoch_ids(0), epoch_ids(1)
    assert sorted(e0) == list(range(20)) and e0 == e0_again and e0 != e1
    assert len(loader) == 3


def write_picture(path: Path, value: int, size=(24, 18)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def test_folder_source_from_subfolders(tmp_path: Path) -> None:
    for i in range(3):
        write_picture(tmp_path / "galaxy" / f"g{i}.jpg", 200)
        write_picture(tmp_path / "star" / "deep" / f"s{i}.png", 20)
    (tmp_path / "star" / "notes.txt").write_text("not a picture")
    images = FolderSource(str(tmp_path)).imageset()
    assert images.classes == ["galaxy", "star"]
    assert len(images) == 6 and list(images.targets) == [0, 0, 0, 1, 1, 1]
    assert images.load(0, 16).shape == (18, 24, 3)
    fp = images.fingerprint
    write_picture(tmp_path / "galaxy" / "g0.jpg", 100)
    assert FolderSource(str(tmp_path)).imageset().fingerprint != fp, (
        "content change -> new cache key"
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_folder_source_from_metadata_with_configured_fields(tmp_path: Path, fmt: str) -> None:
    rows = [
        {"img": f"pics/{i}.jpg", "kind": ["nebula", "planet"][i % 2] + (";star" if i == 0 else "")}
        for i in range(4)
    ]
    for i in range(4):
        write_picture(tmp_path / "pics" / f"{i}.jpg", 40 * i)
    meta = tmp_path / f"meta.{fmt}"
    if fmt == "jsonl":
        meta.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        meta.write_text("img,kind\n" + "\n".join(f"{r['img']},{r['kind']}" for r in rows))
    ml = FolderSource(
        str(tmp_path), metadata=meta.name, path_field="img", label_field="kind", task="multilabel"
    ).imageset()
    assert ml.classes == ["nebula", "planet", "star"]
    assert ml.targets.tolist()[0] == [1.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="path_field"):
        FolderSource(str(tmp_path), metadata=meta.name).imageset()


def test_bad_pictures_are_reported_and_left_out(tmp_path: Path, cache_dir: Path) -> None:
    for i in range(3):
        write_picture(tmp_path / "a" / f"{i}.jpg", 10)
        write_picture(tmp_path / "b" / f"{i}.jpg", 250)
    good = (tmp_path / "a" / "0.jpg").read_bytes()
    (tmp_path / "a" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "b" / "fake.jpg").write_text("<html>not a picture</html>")
    with pytest.raises(DataError, match="not a readable picture"):
        read_image(tmp_path / "b" / "fake.jpg")
    images = FolderSource(str(tmp_path)).imageset()
    arr, failed = build_cache(images, 16, "crop", tmp_path / "cache", progress=False)
    bad = {images.ids[i] for i in failed}
    assert bad == {"a/truncated.jpg", "b/fake.jpg"}
    assert len(arr) == 8


def test_folder_source_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        FolderSource(str(tmp_path / "nope"))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError):
        FolderSource(str(tmp_path)).imageset()


def test_datamodule_gets_its_groups_and_rank_and_imports_no_later_stage(tmp_path: Path) -> None:
    """build_datamodule takes the ImageSet, ``data``, ``preprocess`` and this process's rank;
    it imports neither the sources, nor the anomaly sets, nor the distributed engine."""
    import ast

    import astro_exp.data.datamodule as datamodule

    imageset, _ = counting_imageset(24)
    data = {"batch_size": 4, "val_fraction": 0.2, "test_fraction": 0.2, "num_workers": 0}
    common = dict(seed=0, cache_dir=tmp_path, progress=False)
    whole = datamodule.build_datamodule(
        imageset, data, {"image_size": 16, "resize": "squash"}, **common
    )
    shard = datamodule.build_datamodule(
        imageset, data, {"image_size": 16, "resize": "squash"}, rank=1, world_size=2, **common
    )
    assert whole.resize == "squash" and whole.cache_dir == tmp_path and whole.image_size == 16
    assert np.array_equal(whole.split, shard.split) and (shard.rank, shard.world_size) == (1, 2)
    seen = [int(i) for _, _, idx in whole.loader("val", shuffle=False) for i in idx]
    mine = [int(i) for _, _, idx in shard.loader("val", shuffle=False) for i in idx]
    assert mine == seen[1::2]  # every other item of each global batch
    tree = ast.parse(Path(datamodule.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {
        m
        for m in imported
        if m.startswith(("astro_exp.sources", "astro_exp.anomaly", "astro_exp.engine"))
    }
