"""Contact sheet of the procedural sky renderer: one labelled row per class.

Why: the synthetic data set is only worth training on if a person can tell the classes
apart; this is the quickest way to look at many renders at once.

    python scripts/contact_sheet.py --size 96 --per-class 8 --out outputs/contact_sheet.png
    python scripts/contact_sheet.py --anomalies --multilabel --size 64 --zoom 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astro_exp.sources import sky_render  # noqa: E402

MULTILABEL_ROWS: tuple[tuple[str, ...], ...] = (
    ("galaxy", "star"),
    ("planet", "star"),
    ("nebula", "galaxy"),
    ("nebula", "planet"),
    ("galaxy", "planet", "star"),
    ("galaxy", "nebula", "planet", "star"),
)


def build_rows(args: argparse.Namespace) -> list[tuple[str, list[np.ndarray]]]:
    """(label, pictures) per row; picture i of row r uses the generator (seed, r, i)."""
    rows: list[tuple[str, list[np.ndarray]]] = []
    kinds = list(sky_render.CLASSES) + (list(sky_render.ANOMALY_KINDS) if args.anomalies else [])
    for r, kind in enumerate(kinds):
        pics = [sky_render.render(kind, np.random.default_rng([args.seed, r, i]), args.size)
                for i in range(args.per_class)]  # fmt: skip
        rows.append((kind, pics))
    if args.multilabel:
        for r, combo in enumerate(MULTILABEL_ROWS, start=100):
            pics = [sky_render.render_multilabel(combo, np.random.default_rng([args.seed, r, i]), args.size)
                    for i in range(args.per_class)]  # fmt: skip
            rows.append(("+".join(combo), pics))
    return rows


def compose(
    rows: list[tuple[str, list[np.ndarray]]], size: int, zoom: int, label_w: int = 170
) -> Image.Image:
    """Grid of pictures with a label column on the left."""
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
        draw.text((6, top + cell // 2 - 6), label.replace("+", "+\n") if len(label) > 22 else label,
                  fill=(230, 230, 230), font=font)  # fmt: skip
        for c, pic in enumerate(pics):
            tile = Image.fromarray(pic)
            if zoom != 1:
                tile = tile.resize((cell, cell), Image.NEAREST)
            sheet.paste(tile, (label_w + pad + c * (cell + pad), top))
    return sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96, help="picture size in pixels (square)")
    ap.add_argument("--per-class", type=int, default=8, help="pictures per row")
    ap.add_argument(
        "--out", type=Path, default=Path("outputs/contact_sheet.png"), help="PNG to write"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the renders")
    ap.add_argument("--anomalies", action="store_true", help="add one row per anomaly kind")
    ap.add_argument("--multilabel", action="store_true", help="add rows of multi-label scenes")
    ap.add_argument("--zoom", type=int, default=1, help="integer upscaling of each tile (nearest)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = build_rows(args)
    dt = time.perf_counter() - t0
    count = sum(len(p) for _, p in rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    compose(rows, args.size, args.zoom).save(args.out)
    print(
        f"wrote {args.out} ({len(rows)} rows, {count} pictures, {1000 * dt / count:.1f} ms/picture)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
