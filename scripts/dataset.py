"""Look at the data set: catalog counts, weak-label reports, relabelling.

    python scripts/dataset.py stats                        # counts per label, media type, year, status, failures
    python scripts/dataset.py stats --data-dir /scratch/astro --source apod
    python scripts/dataset.py relabel --labels apod_extended   # rewrite the catalog's weak labels
    python scripts/dataset.py label-report --archive ../shared/data/apod-api/archive-by-month/database
    python scripts/dataset.py label-sheet --thumbs ../shared/data/apod-thumbs --n 100 --out sheet.png

Sharing (key=value words; `python scripts/dataset.py export --help` lists each command's keys):

    python scripts/dataset.py export out=my_apod.tar.gz labels=apod4 since=2024-01-01
    python scripts/dataset.py import bundle=colleague_apod.tar.gz
    python scripts/dataset.py merge bundles=[a.tar.gz,b.tar.gz]          # or out=new_data_dir
    python scripts/dataset.py publish artifact=astro-apod                # a W&B dataset artifact
    python scripts/dataset.py pull artifact=team/astro-apod:latest

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
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from astro_exp.errors import AstroExpError, ConfigError, DataError  # noqa: E402

if TYPE_CHECKING:
    from astro_exp.sharing import BundleFilter


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
    from astro_exp.apod.api import ApiItemError, parse_api_item

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


# -- sharing: export / import / merge / publish / pull -------------------------------------------
# Plain keys of each sharing command; dotted keys (bundle.max_bytes=..., merge.rules=[...],
# wandb.project=...) override conf/share/default.yaml for any of them.
_FILTER_KEYS = {
    "since": "first date to export (YYYY-MM-DD)",
    "until": "last date to export (YYYY-MM-DD)",
    "source": "only these catalog sources: apod or [apod,apod_api]",
    "status": "ok (pictures, the default) or done (also video days, metadata only)",
    "labels": "recompute the bundle's weak labels with conf/labels/NAME (the catalog is not changed)",
    "creator": "who made the bundle (default: $ASTRO_EXP_USER, else the login name)",
}
SHARE_KEYS: dict[str, dict[str, str]] = {
    "export": {"out": "the bundle to write (FILE.tar.gz; required)", **_FILTER_KEYS},
    "import": {"bundle": "the bundle to import (required)"},
    "merge": {
        "bundles": "the bundles to merge: [a.tar.gz,b.tar.gz] (required)",
        "out": "merge into this data folder instead of data_dir (created when missing)",
        "report": "where to write the JSON report (a .txt table goes beside it); default <target>/reports/",
    },
    "publish": {
        "artifact": "the W&B artifact name, e.g. astro-apod (required)",
        "bundle": "publish this bundle; default: export data_dir's catalog first (with the filter keys)",
        "out": "where the exported bundle goes (default <data_dir>/bundles/<artifact>.tar.gz)",
        "aliases": "extra artifact aliases: [best,2024]",
        "offline": "true: log into an offline W&B run (upload later with `wandb sync`)",
        **_FILTER_KEYS,
    },
    "pull": {"artifact": "name[:alias], entity/name[:alias] or entity/project/name[:alias] (required)"},
}
_OVERRIDE_ROOTS = ("bundle", "merge", "wandb")


def parse_settings(cmd: str, words: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``key=value`` words of a sharing command as ({key: value}, [dotted config overrides])."""
    allowed = {**SHARE_KEYS[cmd], "data_dir": "", "paths.data_dir": ""}
    values, overrides = {}, []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ConfigError(f"{cmd}: expected key=value, got {word!r}; see python scripts/dataset.py {cmd} --help")
        if key in allowed:
            values["data_dir" if key == "paths.data_dir" else key] = value
        elif "." in key and key.split(".")[0] in _OVERRIDE_ROOTS:
            overrides.append(word)
        else:
            known = ", ".join([*SHARE_KEYS[cmd], "data_dir", "bundle.*", "merge.*", "wandb.*"])
            raise ConfigError(f"{cmd}: unknown key {key!r}; use one of {known}")
    return values, overrides


def _list(value: str | None) -> list[str]:
    """``[a,b]`` or ``a,b`` or ``a`` as a list of strings."""
    if not value:
        return []
    return [v.strip().strip("'\"") for v in value.strip().removeprefix("[").removesuffix("]").split(",") if v.strip()]


def _required(values: dict[str, str], key: str, cmd: str) -> str:
    if not values.get(key):
        raise DataError(f"{cmd} needs {key}=...; see python scripts/dataset.py {cmd} --help")
    return values[key]


def _share_data_dir(args: argparse.Namespace, values: dict[str, str]) -> Path:
    return Path(values.get("data_dir") or args.data_dir or default_data_dir())


def _bundle_filter(values: dict[str, str]) -> BundleFilter:
    from astro_exp.sharing import BundleFilter

    return BundleFilter(
        since=values.get("since"),
        until=values.get("until"),
        sources=_list(values.get("source")) or None,
        status=values.get("status") or "ok",
        labels=values.get("labels"),
    )


def cmd_export(args: argparse.Namespace) -> int:
    from astro_exp.sharing import export_bundle

    values, _ = parse_settings("export", args.settings)
    out = Path(_required(values, "out", "export"))
    result = export_bundle(_share_data_dir(args, values), out, _bundle_filter(values), creator=values.get("creator"))
    print(result.line())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from astro_exp.sharing import bundle_limits, import_bundle, load_settings

    values, overrides = parse_settings("import", args.settings)
    limits = bundle_limits(load_settings(overrides))
    result = import_bundle(_required(values, "bundle", "import"), _share_data_dir(args, values), limits)
    print(result.line())
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from astro_exp.sharing import bundle_limits, load_settings, merge_bundles, merge_rules

    values, overrides = parse_settings("merge", args.settings)
    bundles = _list(_required(values, "bundles", "merge"))
    settings = load_settings(overrides)
    target = Path(values["out"]) if values.get("out") else _share_data_dir(args, values)
    report = merge_bundles(bundles, target, merge_rules(settings), bundle_limits(settings), report=values.get("report"))
    print(report.text())
    print(f"\nreport: {report.paths['json']} and {report.paths['text']}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from astro_exp.sharing import bundle_limits, export_bundle, load_settings, open_bundle
    from astro_exp.sharing.artifacts import check_name, publish

    values, overrides = parse_settings("publish", args.settings)
    name = check_name(_required(values, "artifact", "publish"))
    settings = load_settings(overrides)
    data_dir = _share_data_dir(args, values)
    if values.get("bundle"):
        bundle = Path(values["bundle"])
        with open_bundle(bundle, bundle_limits(settings)) as vb:  # never publish a bundle that would be refused
            manifest = vb.manifest
    else:
        bundle = Path(values.get("out") or data_dir / "bundles" / f"{name}.tar.gz")
        result = export_bundle(data_dir, bundle, _bundle_filter(values), creator=values.get("creator"))
        print(result.line())
        manifest = result.manifest
    meta = {k: manifest.get(k) for k in ("format_version", "created_at", "creator", "filter", "labels")}
    meta.update(pictures=len(manifest["pictures"]), files=len(manifest["files"]))
    offline = (values.get("offline") or "false").lower() in ("1", "true", "yes")
    done = publish(bundle, name, settings.get("wandb") or {}, metadata=meta, aliases=_list(values.get("aliases")),
                   run_dir=data_dir, offline=offline)  # fmt: skip
    print(done.line())
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from astro_exp.sharing import bundle_limits, import_bundle, load_settings
    from astro_exp.sharing.artifacts import parse_ref, pull

    values, overrides = parse_settings("pull", args.settings)
    settings = load_settings(overrides)
    wb = settings.get("wandb") or {}
    ref = parse_ref(_required(values, "artifact", "pull"), str(wb.get("project") or "astro-exp"), wb.get("entity"))
    data_dir = _share_data_dir(args, values)
    for bundle in pull(ref, data_dir / "bundles" / "pulled", wb):
        print(import_bundle(bundle, data_dir, bundle_limits(settings)).line())
    return 0


def _add_share_parser(sub: argparse._SubParsersAction, cmd: str, summary: str, fn) -> None:
    keys = "\n".join(f"  {k}=...  {h}" for k, h in SHARE_KEYS[cmd].items())
    epilog = (f"keys:\n{keys}\n  data_dir=...  the data folder (default $ASTRO_EXP_ROOT/data, else ./data)\n"
              "  bundle.max_bytes=... merge.rules=[...] wandb.project=...  override conf/share/default.yaml")  # fmt: skip
    p = sub.add_parser(cmd, help=summary, description=summary, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("settings", nargs="*", metavar="key=value", help="settings, as listed below")
    p.add_argument("--data-dir", type=Path, default=None, help="the data folder (same as data_dir=)")
    p.set_defaults(fn=fn)


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
    _add_share_parser(sub, "export", "write a catalog subset as one bundle (.tar.gz + sha256 manifest)", cmd_export)
    _add_share_parser(sub, "import", "verify a bundle and add it to the catalog (all or nothing)", cmd_import)
    _add_share_parser(sub, "merge", "merge bundles without duplicates; settle label disagreements by rules", cmd_merge)
    _add_share_parser(sub, "publish", "publish a bundle as a W&B dataset artifact", cmd_publish)
    _add_share_parser(sub, "pull", "download a W&B dataset artifact and import it", cmd_pull)
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
