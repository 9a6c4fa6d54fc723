"""What the labelled-picture sources share: turning per-picture label lists into targets,
checking there is something to train on, and the :class:`ImageSet` of picture files whose
fingerprint covers content, labels and the labeller version.

Why one place: the catalog source, the thumbnails folder and the archive must build their
sets the same way, or the tensor cache would not be rebuilt when it should be.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astro_exp.data.imageset import ImageSet, Task
from astro_exp.data.labels import Labeller
from astro_exp.errors import DataError
from astro_exp.imageio import read_image

log = logging.getLogger(__name__)


def _targets(labels: list[list[str]], classes: list[str], task: Task) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    if task == "multiclass":
        return np.array([index[labs[0]] for labs in labels], dtype=np.int64)
    out = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for r, labs in enumerate(labels):
        out[r, [index[lab] for lab in labs]] = 1.0
    return out


def _usable(labs: Sequence[str], classes: list[str], task: Task) -> list[str]:
    """The labels of one picture a training set can use: multiclass the primary only."""
    keep = [lab for lab in labs if lab in classes]
    if task == "multiclass":
        return keep[:1] if labs and labs[0] in classes else []
    return keep


def _check_classes(labels: list[list[str]], classes: list[str], where: str) -> None:
    if not labels:
        raise DataError(
            f"no labelled pictures in {where}; check the label config or source.include_other"
        )
    present = {lab for labs in labels for lab in labs}
    if len(present) < 2:
        raise DataError(
            f"{where} gives only the labels {sorted(present)}; need at least 2 classes to train"
        )
    missing = [c for c in classes if c not in present]
    if missing:
        log.warning("no pictures labelled %s in %s", missing, where)


def _fingerprint(
    shas: list[str], labels: list[list[str]], labeller: Labeller, classes: list[str], task: str
) -> str:
    digest = hashlib.sha256(f"{labeller.version}|{task}|{','.join(classes)}\n".encode())
    for sha, labs in zip(shas, labels, strict=True):
        digest.update(f"{sha}|{'|'.join(labs)}\n".encode())
    return digest.hexdigest()


def labelled_set(
    name: str,
    classes: list[str],
    task: Task,
    ids: list[str],
    paths: list[Path],
    shas: list[str],
    labels: list[list[str]],
    labeller: Labeller,
    meta: dict[str, Any],
) -> ImageSet:
    """The set of picture files ``paths`` labelled ``labels``, read at the cache size.

    Args:
        name, classes, task, ids, meta: as :class:`ImageSet` takes them.
        paths: one picture file per item.
        shas: the files' SHA-256 (the fingerprint covers content, not names).
        labels: each item's usable labels (multiclass: one).
        labeller: whose version goes into the fingerprint.

    Returns:
        The :class:`ImageSet`; its targets come from ``labels``.
    """

    def load(i: int, size: int) -> np.ndarray:
        return read_image(paths[i], target_size=size)  # JPEG draft at the cache size

    return ImageSet(
        name=name,
        classes=classes,
        task=task,
        ids=ids,
        targets=_targets(labels, classes, task),
        fingerprint=_fingerprint(shas, labels, labeller, classes, task),
        load=load,
        meta=meta,
    )
