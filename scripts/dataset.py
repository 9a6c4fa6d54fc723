"""Look at the data set: catalog counts, weak-label reports, relabelling.

    python scripts/dataset.py stats                        # counts per label, media type, year, status, failures
    python scripts/dataset.py stats --data-dir /scratch/astro --source apod
    python scripts/dataset.py relabel --labels apod_extended   # rewrite the catalog's weak labels
    python scripts/dataset.py label-report --archive ../shared/data/apod-api/archive-by-month/database
    python scripts/dataset.py label-sheet --thumbs ../shared/data/apod-thumbs --n 100 --out sheet.png

The data folder defaults to ``$ASTRO_EXP_ROOT/data``, else ``./data`` (as ``paths.data_dir``).
label-report labels a folder of API responses (JSON arrays) and prints the distribution;
label-sheet draws random pictures of a metadata folder with their labels, to judge precision.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro_exp.errors import AstroExpError, DataError  # noqa: E402


def default_data_dir() -> Path:
    return Path(os.environ.get("ASTRO_EXP_ROOT", os.getcwd())) / "data"


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in header]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[c]) for r in cells) for c in range(len(header))]
    numeric = [all(isinstance(r[c], int | float) or r[c] is None for r in rows) for c in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric, strict=True)).rstrip()

    lines = [title, fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]] or ["(none)"]
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    from astro_exp.data.catalog import Catalog, catalog_path

    path = catalog_path(args.data_dir)
    if not path.is_file():
        raise DataError(f"no catalog at {path}; run python scripts/scrape.py first or pass --data-dir")
    with Catalog(path) as cat:
        tables = cat.stats(args.source or None)
    total = sum(n for _, n in tables["source"])
    print(f"catalog {path}: {total} rows")
    headers = {"year": ("year", "rows", "ok pictures"), "failures": ("status", "reason", "rows")}
    for name, rows in tables.items():
        print()
        print(format_table(name, headers.get(name, (name.split(" (")[0], "rows")), rows))
    return 0


def cmd_relabel(args: argparse.Namespace) -> int:
    from astro_exp.data.catalog import Catalog, catalog_path
    from astro_exp.data.labels import Labeller, load_label_config

    labeller = Labeller(load_label_config(args.labels))
    path = catalog_path(args.data_dir)
    if not path.is_file():
        raise DataError(f"no catalog at {path}; run python scripts/scrape.py first or pass --data-dir")
    with Catalog(path) as cat:
        rows = [r for r in cat.rows(args.source or None) if r.get("title")]
        updates = {r["id"]: labeller.label(r["title"], r.get("explanation")).to_json() for r in rows}
        changed = sum(1 for r in rows if (r.get("labels") or {}).get("primary") != updates[r["id"]]["primary"])
        cat.set_labels(updates)
    print(f"relabelled {len(updates)} rows with {labeller.version}; {changed} changed their primary label")
    return 0


def _archive_days(folder: Path) -> list:
    from astro_exp.sources.apod_api import ApiItemError, parse_api_item

    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"no *.json under {folder}; point --archive at a folder of API responses")
    days = []
    for f in files:
        data = json.loads(f.read_text(encoding="utf-8"))
        for item in data if isinstance(data, list) else [data]:
            try:
                days.append(parse_api_item(item))
            except ApiItemError:
                continue
    return days


def cmd_label_report(args: argparse.Namespace) -> int:
    from astro_exp.data.labels import Labeller, load_label_config

    labeller = Labeller(load_label_config(args.labels))
    days = _archive_days(Path(args.archive))
    t0 = time.perf_counter()
    results = [(d, labeller.label(d.title, d.explanation)) for d in days]
    rate = len(results) / max(time.perf_counter() - t0, 1e-9)
    print(f"{len(days)} days with text, labelled by {labeller.version} ({rate:.0f} days/s)\n")
    images = [(d, r) for d, r in results if d.media_type == "image"]
    classes = labeller.label_classes(include_other=True)
    primary_all = Counter(r.primary for _, r in results)
    primary_img = Counter(r.primary for _, r in images)
    in_all = Counter(lab for _, r in images for lab in r.all)
    rows = [(c, primary_all[c], primary_img[c], f"{100 * primary_img[c] / max(len(images), 1):.1f}%", in_all[c])
            for c in classes]  # fmt: skip
    print(format_table("primary label", ("label", "all days", "picture days", "share", "in 'all' (multilabel)"), rows))
    multi = sum(1 for _, r in images if len(r.all) > 1)
    print(f"\npicture days with more than one label: {multi} of {len(images)}")
    by_decade = Counter((d.date.year // 5 * 5, r.primary) for d, r in images)
    spans = sorted({y for y, _ in by_decade})
    print()
    print(format_table("primary label by 5 years (picture days)", ("from", *classes),
                       [(y, *[by_decade[(y, c)] for c in classes]) for y in spans]))  # fmt: skip
    if args.show:
        print()
        for d, r in random.Random(args.seed).sample(results, min(args.show, len(results))):
            print(f"{r.primary:12s} {d.date} {d.title[:70]}")
    return 0


def cmd_label_sheet(args: argparse.Namespace) -> int:
    from PIL import Image, ImageDraw

    from astro_exp.data.labels import Labeller, load_label_config
    from astro_exp.sources.apod_catalog import ApodThumbsSource

    labeller = Labeller(load_label_config(args.labels))
    src = ApodThumbsSource(args.thumbs, title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
                           explanation_fields=["candidates.0.explanation"], labels=labeller)  # fmt: skip
    recs, seen = [], set()
    for r in src.records():  # one frame per animation, as training sees them
        key = re.sub(r"-\d+$", "", Path(r["file"]).stem)
        if (src.root / r["file"]).is_file() and key not in seen:
            seen.add(key)
            recs.append(r)
    picked = random.Random(args.seed).sample(recs, min(args.n, len(recs)))
    cols, tw, th, cap = args.cols, 240, 180, 34
    rows_n = (len(picked) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tw, rows_n * (th + cap)), "white")
    draw = ImageDraw.Draw(sheet)
    lines = []
    for i, rec in enumerate(picked):
        res = labeller.label(rec["title"], rec["explanation"])
        with Image.open(src.root / rec["file"]) as im:
            thumb = im.convert("RGB").resize((tw - 4, th - 4))
        x, y = (i % cols) * tw, (i // cols) * (th + cap)
        sheet.paste(thumb, (x + 2, y + 2))
        draw.text((x + 3, y + th), f"{i}: {'+'.join(res.all)}", fill="black")
        draw.text((x + 3, y + th + 14), rec["title"][:38], fill="gray")
        lines.append(f"{i}\t{res.primary}\t{'+'.join(res.all)}\t{rec['file']}\t{rec['title']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    out.with_suffix(".tsv").write_text("index\tprimary\tall\tfile\ttitle\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.tsv')} ({len(picked)} pictures, {labeller.version})")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stats", help="catalog counts per label, media type, year, status and failure")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--source", action="append", help="only this catalog source (repeatable)")
    p.set_defaults(fn=cmd_stats)
    p = sub.add_parser("relabel", help="recompute the catalog's weak labels with a label config")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--labels", default="apod4")
    p.add_argument("--source", action="append")
    p.set_defaults(fn=cmd_relabel)
    p = sub.add_parser("label-report", help="label distribution over a folder of API JSON responses")
    p.add_argument("--archive", required=True)
    p.add_argument("--labels", default="apod4")
    p.add_argument("--show", type=int, default=0, help="also print this many random labelled titles")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(fn=cmd_label_report)
    p = sub.add_parser("label-sheet", help="contact sheet of random labelled pictures (+ a .tsv)")
    p.add_argument("--thumbs", required=True, help="a folder with metadata.jsonl (e.g. ../shared/data/apod-thumbs)")
    p.add_argument("--labels", default="apod4")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--cols", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/label_sheet.png")
    p.set_defaults(fn=cmd_label_sheet)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.fn(args))
    except AstroExpError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
