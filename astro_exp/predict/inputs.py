"""What :meth:`Classifier.predict <astro_exp.predict.classifier.Classifier.predict>` accepts,
as one :class:`Item` per picture: paths, folders (recursively), globs, URLs, PIL images,
arrays and tensors (batches split up), each with the day's text when one is given.

An item knows how to get its RGB uint8 pixels (``load``) or why it cannot (``error``); loading
happens later, on the classifier's decode threads, so a bad input fails alone.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astro_exp.errors import DataError
from astro_exp.sources.folder import IMAGE_EXTENSIONS

GLOB_CHARS = set("*?[")

# the day's words of each picture: one per picture (after folders are expanded), or by name
Texts = Sequence[Any] | Mapping[str, Any] | None


@dataclass
class Item:
    """One picture to classify: a name and how to get its RGB uint8 pixels (or why not)."""

    name: str
    load: Callable[[], np.ndarray] | None = None
    error: str | None = None
    text: tuple[str | None, str | None] | str | None = None  # the day's words, if given


def expand_inputs(
    inputs: Any,
    file_item: Callable[[Path, str | None], Item],
    url_item: Callable[[str], Item],
) -> list[Item]:
    """Inputs -> one item per picture: folders recursively, globs, batches split up.

    Args:
        inputs: paths, folders, globs, URLs, PIL images, arrays or tensors (or one of them).
        file_item: the item of a picture file (its path, and the name to show or None).
        url_item: the item of a URL.

    Returns:
        The items in input order (a folder's and a glob's files sorted); an input that is
        none of these becomes an item with ``error`` set.
    """
    if isinstance(inputs, str | os.PathLike | torch.Tensor | np.ndarray) or is_pil(inputs):
        inputs = [inputs]
    items: list[Item] = []
    for n, x in enumerate(inputs):
        if isinstance(x, str | os.PathLike):
            items += _expand_path(str(x), file_item, url_item)
        elif is_pil(x):
            items.append(Item(f"<PIL image {n}>", lambda im=x: np.asarray(im.convert("RGB"))))
        elif isinstance(x, torch.Tensor | np.ndarray):
            items += _expand_array(x, n)
        else:
            items.append(
                Item(
                    f"<input {n}>",
                    error=f"input {n} is a {type(x).__name__}; pass paths, URLs, PIL images or tensors",
                )
            )
    return items


def _expand_path(
    s: str,
    file_item: Callable[[Path, str | None], Item],
    url_item: Callable[[str], Item],
) -> list[Item]:
    """A URL, a file, a folder's pictures or a glob's files (or why there are none)."""
    if is_url(s):
        return [url_item(s)]
    p = Path(s).expanduser()
    if p.is_dir():
        files = sorted(
            f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            return [
                Item(
                    s,
                    error=f"{s}: no pictures ({', '.join(IMAGE_EXTENSIONS)}) in this folder; check the path",
                )
            ]
        return [file_item(f, None) for f in files]
    if p.exists():
        return [file_item(p, s)]
    if GLOB_CHARS & set(s):
        files = sorted(
            Path(f) for f in glob.glob(os.path.expanduser(s), recursive=True) if os.path.isfile(f)
        )
        if not files:
            return [Item(s, error=f"{s}: the pattern matches no files; check it")]
        return [file_item(f, None) for f in files]
    return [Item(s, error=f"{s}: no such file or folder; check the path")]


def is_url(s: str) -> bool:
    return s.lower().startswith(("http://", "https://"))


def is_pil(x: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(x, Image.Image)


def _expand_array(x: torch.Tensor | np.ndarray, n: int) -> list[Item]:
    """A tensor is (3, H, W) or (B, 3, H, W); a NumPy array (H, W, 3) or (B, H, W, 3)."""
    is_torch = isinstance(x, torch.Tensor)
    a = x.detach().cpu().numpy() if is_torch else np.asarray(x)
    name = "tensor" if is_torch else "array"
    if a.ndim == 4:
        return [
            Item(f"<{name} {n}[{b}]>", lambda a=a, b=b: to_hwc_uint8(a[b], is_torch))
            for b in range(len(a))
        ]
    return [Item(f"<{name} {n}>", lambda: to_hwc_uint8(a, is_torch and a.ndim == 3))]


def to_hwc_uint8(a: np.ndarray, channels_first: bool) -> np.ndarray:
    """An image array (gray, CHW or HWC; uint8 or float in [0, 1]) -> RGB uint8 HWC."""
    if a.ndim == 3 and channels_first:
        a = a.transpose(1, 2, 0)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise DataError(
            f"array of shape {a.shape} is not a picture; pass (3, H, W) tensors or (H, W, 3) arrays"
        )
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise DataError("array holds NaN or inf values; pass finite pixels in [0, 1] or uint8")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)  # floats are taken as [0, 1]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def attach_texts(items: list[Item], texts: Texts) -> None:
    """Give each item its day's words: by position (one per picture) or by name."""
    if texts is None:
        return
    if isinstance(texts, Mapping):
        for it in items:
            it.text = texts.get(it.name, texts.get(str(Path(it.name).expanduser().resolve())))
        return
    texts = list(texts)
    if len(texts) != len(items):
        raise DataError(
            f"{len(texts)} texts for {len(items)} pictures; give one text (or None) per picture, "
            "or a mapping from picture path to text"
        )
    for it, t in zip(items, texts, strict=True):
        it.text = t


def in_batches(items: Sequence[Item], size: int) -> Iterable[list[Item]]:
    """The items ``size`` at a time (the last batch may be smaller)."""
    for s in range(0, len(items), size):
        yield list(items[s : s + size])
