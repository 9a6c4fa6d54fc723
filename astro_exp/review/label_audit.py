"""A person audits the weak labels (``astro-exp dataset label-report / check-labels / label-sheet``).

Three views, from the cheapest to the most careful: how the labeller spreads a folder of
API responses over its classes (no pictures needed), how it agrees with a person's careful
labels of the shared thumbnails, and a sheet of random pictures with their labels, to
judge precision by eye. The counting lives in :mod:`astro_exp.data.label_report` and
:mod:`astro_exp.data.label_check`; here the texts and pictures are read as the sources
read them (so the check scores what training sees).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageDraw

from astro_exp.apod.api import ApiItemError, parse_api_item
from astro_exp.apod.pages import ApodDay
from astro_exp.config import read_conf
from astro_exp.data.label_check import check_labeller
from astro_exp.data.label_files import read_label_file
from astro_exp.data.label_report import distribution_report
from astro_exp.data.labels import Labeller, load_label_config
from astro_exp.errors import DataError
from astro_exp.files import atomic_write
from astro_exp.imageio import decode_picture
from astro_exp.sources.apod_thumbs import ApodThumbsSource

TILE, CAPTION = (240, 180), 34  # a label sheet's picture size and caption height, in pixels


def archive_days(folder: Path) -> list[ApodDay]:
    """The days of a folder of API responses (``*.json``, arrays or single items); items the
    API left without a date or title are skipped."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"no *.json under {folder}; point archive= at a folder of API responses")
    days = []
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else [data]:
            try:
                days.append(parse_api_item(item))
            except ApiItemError:
                continue
    return days


def label_report(archive: Path, labeller: Labeller, show: int = 0, seed: int = 0) -> str:
    """The label distribution over a folder of API responses (``label-report``).

    Args:
        archive: the folder of API responses (JSON arrays).
        labeller: the rules to label with.
        show: also list this many random days with their label.
        seed: seed of that sample.

    Returns:
        The report (:func:`~astro_exp.data.label_report.distribution_report`).
    """
    return distribution_report(labeller, archive_days(archive), show=show, seed=seed)


def check_labels(
    gold: Path, thumbs: Path | None, labels: str, show: int = 0, out: Path | None = None
) -> str:
    """The weak labeller against a person's labels of a thumbnail folder (``check-labels``).

    Args:
        gold: the person's labels (``file,label`` CSV or JSON lines; gold.csv as it is).
        thumbs: the folder with metadata.jsonl; None: gold's folder.
        labels: the label config (``conf/labels/NAME``), loaded once the pictures are found.
        show: list this many of the texts it gets wrong.
        out: also write the whole check there as JSON.

    Returns:
        Agreement, per-class table, confusion and the wrong texts, as text.
    """
    gold = Path(gold).expanduser()
    rows = read_label_file(gold)
    folder = Path(thumbs).expanduser() if thumbs else gold.parent
    source = _thumbs_as_training_reads_them(folder)
    labeller = Labeller(load_label_config(labels))
    chk = check_labeller(labeller, source.records(), rows)
    if out:
        atomic_write(Path(out), json.dumps(chk.to_json(), indent=2))
    return chk.report(labeller.version, show)


def _thumbs_as_training_reads_them(folder: Path) -> ApodThumbsSource:
    """The thumbnail folder with the text fields of ``source=apod_thumbs``."""
    fields = yaml.safe_load(read_conf("source/apod_thumbs.yaml"))
    return ApodThumbsSource(
        str(folder),
        metadata=fields["metadata"],
        path_field=fields["path_field"],
        title_fields=fields["title_fields"],
        explanation_fields=fields["explanation_fields"],
        title_from_filename=fields["title_from_filename"],
    )


def label_sheet(
    thumbs: str, labeller: Labeller, out: Path, n: int = 100, cols: int = 5, seed: int = 0
) -> str:
    """Random pictures of a thumbnail folder with their weak labels: a PNG sheet and a TSV of
    the same (``label-sheet``), to judge the labels' precision by eye.

    Args:
        thumbs: the folder with metadata.jsonl and the pictures.
        labeller: the rules to label with.
        out: the sheet (PNG); the table goes beside it as ``.tsv``.
        n: how many pictures (one frame per animation).
        cols: pictures per row.
        seed: seed of the sample.

    Returns:
        One line: what was written.
    """
    src = ApodThumbsSource(
        thumbs,
        title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
        explanation_fields=["candidates.0.explanation"],
        labels=labeller,
    )
    recs = _one_frame_each(src)
    picked = random.Random(seed).sample(recs, min(n, len(recs)))
    sheet, lines = _draw_sheet(src.root, picked, labeller, cols)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    out.with_suffix(".tsv").write_text(
        "index\tprimary\tall\tfile\ttitle\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return f"wrote {out} and {out.with_suffix('.tsv')} ({len(picked)} pictures, {labeller.version})"


def _one_frame_each(src: ApodThumbsSource) -> list[dict[str, Any]]:
    """The records whose picture is there, one frame per animation (as training sees them)."""
    recs, seen = [], set()
    for r in src.records():
        key = re.sub(r"-\d+$", "", Path(r["file"]).stem)
        if (src.root / r["file"]).is_file() and key not in seen:
            seen.add(key)
            recs.append(r)
    return recs


def _draw_sheet(
    root: Path, picked: list[dict[str, Any]], labeller: Labeller, cols: int
) -> tuple[Image.Image, list[str]]:
    """The sheet (a PIL image: each picture over its index, labels and title) and its TSV rows."""
    tw, th = TILE
    rows_n = (len(picked) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tw, rows_n * (th + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    lines = []
    for i, rec in enumerate(picked):
        res = labeller.label(rec["title"], rec["explanation"])
        thumb = decode_picture(  # decoded at a reduced JPEG scale: it is shrunk to a thumbnail
            root / rec["file"],
            max_pixels=None,
            max_bytes=None,
            exif_transpose=False,
            draft_size=(2 * tw, 2 * th),
        ).resize((tw - 4, th - 4))
        x, y = (i % cols) * tw, (i // cols) * (th + CAPTION)
        sheet.paste(thumb, (x + 2, y + 2))
        draw.text((x + 3, y + th), f"{i}: {'+'.join(res.all)}", fill="black")
        draw.text((x + 3, y + th + 14), rec["title"][:38], fill="gray")
        lines.append(f"{i}\t{res.primary}\t{'+'.join(res.all)}\t{rec['file']}\t{rec['title']}")
    return sheet, lines
