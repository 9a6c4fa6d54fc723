"""``astro-exp contact-sheet`` (``python scripts/contact_sheet.py``): a contact sheet of the
procedural sky renderer, one labelled row per class.

Why: the synthetic data set is only worth training on if a person can tell the classes
apart; this is the quickest way to look at many renders at once.

    python scripts/contact_sheet.py size=96 per_class=8 out=outputs/contact_sheet.png
    python scripts/contact_sheet.py anomalies=true multilabel=true size=64 zoom=2

"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from astro_exp.cli.command import command

MULTILABEL_ROWS: tuple[tuple[str, ...], ...] = (
    ("galaxy", "star"),
    ("planet", "star"),
    ("nebula", "galaxy"),
    ("nebula", "planet"),
    ("galaxy", "planet", "star"),
    ("galaxy", "nebula", "planet", "star"),
)


def build_rows(settings: Any) -> list[tuple[str, list[np.ndarray]]]:
    """(label, pictures) per row; picture i of row r uses the generator (seed, r, i).

    ``settings`` has ``seed``, ``size``, ``per_class``, ``anomalies`` and ``multilabel``.
    """
    from astro_exp.sources import sky_render

    rows: list[tuple[str, list[np.ndarray]]] = []
    kinds = list(sky_render.CLASSES) + (
        list(sky_render.ANOMALY_KINDS) if settings.anomalies else []
    )
    for r, kind in enumerate(kinds):
        pics = [
            sky_render.render(kind, np.random.default_rng([settings.seed, r, i]), settings.size)
            for i in range(settings.per_class)
        ]
        rows.append((kind, pics))
    if settings.multilabel:
        for r, combo in enumerate(MULTILABEL_ROWS, start=100):
            pics = [
                sky_render.render_multilabel(
                    combo, np.random.default_rng([settings.seed, r, i]), settings.size
                )
                for i in range(settings.per_class)
            ]
            rows.append(("+".join(combo), pics))
    return rows


def compose(rows: list[tuple[str, list[np.ndarray]]], size: int, zoom: int, label_w: int = 170):
    """Grid of pictures with a label column on the left (a PIL image)."""
    from PIL import Image, ImageDraw, ImageFont

    cell = size * zoom
    pad = 4
    ncol = max(len(p) for _, p in rows)
    sheet = Image.new(
        "RGB", (label_w + ncol * (cell + pad) + pad, len(rows) * (cell + pad) + pad), (30, 30, 30)
    )
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, (label, pics) in enumerate(rows):
        top = pad + r * (cell + pad)
        draw.text(
            (6, top + cell // 2 - 6),
            label.replace("+", "+\n") if len(label) > 22 else label,
            fill=(230, 230, 230),
            font=font,
        )
        for c, pic in enumerate(pics):
            tile = Image.fromarray(pic)
            if zoom != 1:
                tile = tile.resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (label_w + pad + c * (cell + pad), top))
    return sheet


@command("contact_sheet", name="contact-sheet")
def main(cfg: DictConfig) -> int:
    """Render, lay out and save the sheet; one summary line on stdout."""
    t0 = time.perf_counter()
    rows = build_rows(cfg)
    dt = time.perf_counter() - t0
    count = sum(len(p) for _, p in rows)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compose(rows, int(cfg.size), int(cfg.zoom)).save(out)
    print(f"wrote {out} ({len(rows)} rows, {count} pictures, {1000 * dt / count:.1f} ms/picture)")
    return 0


if __name__ == "__main__":
    main()
