"""``astro-exp dataset`` (``python scripts/dataset.py``): look at the data set (catalog counts,
weak-label reports, relabelling) and share it (bundles: export, import, merge, W&B artifacts).

    python scripts/dataset.py stats                        # counts per label, media type, year, status, failures
    python scripts/dataset.py stats data_dir=/scratch/astro source=apod
    python scripts/dataset.py relabel labels=apod_extended   # rewrite the catalog's weak labels
    python scripts/dataset.py label-report archive=../shared/data/apod-api/archive-by-month/database
    python scripts/dataset.py label-sheet thumbs=../shared/data/apod-thumbs n=100 out=sheet.png
    python scripts/dataset.py export out=my_apod.tar.gz labels=apod4 since=2024-01-01
    python scripts/dataset.py import bundle=colleague_apod.tar.gz
    python scripts/dataset.py merge bundles=[a.tar.gz,b.tar.gz]          # or out=new_data_dir
    python scripts/dataset.py publish artifact=astro-apod                # a W&B dataset artifact
    python scripts/dataset.py pull artifact=team/astro-apod:latest

A Hydra command (conf/dataset.yaml): the first word picks the option of the config group
conf/dataset/ (``dataset=export``), whose keys live under ``dataset.``; the plain ``out=...``
is shorthand for ``dataset.out=...`` (``source`` and ``labels`` are config groups elsewhere,
so the keys cannot be top-level), and ``bundle.*``, ``merge.*``, ``wandb.*`` for
``share.<key>`` (conf/share/default.yaml). ``<command> --help`` lists a command's keys.

The data folder defaults to ``$ASTRO_EXP_ROOT/data``, else ``./data`` (as ``paths.data_dir``).
label-report labels a folder of API responses (JSON arrays) and prints the distribution;
label-sheet draws random pictures of a metadata folder with their labels, to judge precision.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError, DataError
from astro_exp.tables import report_table

if TYPE_CHECKING:
    from astro_exp.sharing import BundleFilter

COMMANDS = (
    "stats",
    "relabel",
    "label-report",
    "check-labels",
    "label-sheet",
    "export",
    "import",
    "merge",
    "publish",
    "pull",
)
SHARE_NODES = ("bundle", "merge", "wandb")  # conf/share/default.yaml, under share.


def prepare(args: list[str]) -> list[str]:
    """``export out=x labels=apod4`` -> ``dataset=export dataset.out=x dataset.labels=apod4``."""
    args = list(args)
    if args and not args[0].startswith("-") and "=" not in args[0]:
        args[0] = f"dataset={args[0]}"
    out = []
    for a in args:
        key, eq, _ = a.partition("=")
        if eq and key.split(".")[0] in SHARE_NODES and "." in key:
            a = f"share.{a}"
        elif eq and key.isidentifier() and key not in ("dataset", "data_dir"):
            a = f"dataset.{a}"
        out.append(a)
    return out


def _command_name(args: list[str]) -> str:
    """The chosen command, for the one-line errors (``export: unknown key 'colour'``)."""
    chosen = next((a.partition("=")[2] for a in args if a.startswith("dataset=")), "dataset")
    return chosen if chosen in COMMANDS else "dataset"


def _list(value: Any) -> list[str]:
    """``[a,b]`` (a list or its text) or ``a,b`` or ``a`` as a list of strings."""
    if value is None or value == "":
        return []
    if isinstance(value, ListConfig | list | tuple):
        return [
            str(v)
            for v in (OmegaConf.to_container(value) if isinstance(value, ListConfig) else value)
        ]
    text = str(value)
    return [
        v.strip().strip("'\"")
        for v in text.strip().removeprefix("[").removesuffix("]").split(",")
        if v.strip()
    ]


def _required(cfg: DictConfig, key: str) -> Any:
    value = cfg.dataset.get(key)
    if value is None or value == "" or (isinstance(value, ListConfig) and not len(value)):
        cmd = cfg.dataset.cmd
        raise DataError(f"{cmd} needs {key}=...; see python scripts/dataset.py {cmd} --help")
    return value


def cmd_stats(cfg: DictConfig) -> int:
    from astro_exp.data.catalog import Catalog, catalog_path

    path = catalog_path(cfg.data_dir)
    if not path.is_file():
        raise DataError(
            f"no catalog at {path}; run python scripts/scrape.py first or pass data_dir=..."
        )
    with Catalog(path) as cat:
        tables = cat.stats(_list(cfg.dataset.source) or None)
    total = sum(n for _, n in tables["source"])
    print(f"catalog {path}: {total} rows")
    headers = {"year": ("year", "rows", "ok pictures"), "failures": ("status", "reason", "rows")}
    for name, rows in tables.items():
        print()
        print(report_table(name, headers.get(name, (name.split(" (")[0], "rows")), rows))
    return 0


def cmd_relabel(cfg: DictConfig) -> int:
    from astro_exp.data.catalog import Catalog, catalog_path
    from astro_exp.data.labels import Labeller, load_label_config

    labeller = Labeller(load_label_config(cfg.dataset.labels))
    path = catalog_path(cfg.data_dir)
    if not path.is_file():
        raise DataError(
            f"no catalog at {path}; run python scripts/scrape.py first or pass data_dir=..."
        )
    with Catalog(path) as cat:
        rows = [r for r in cat.rows(_list(cfg.dataset.source) or None) if r.get("title")]
        updates = {
            r["id"]: labeller.label(r["title"], r.get("explanation")).to_json() for r in rows
        }
        changed = sum(
            1 for r in rows if (r.get("labels") or {}).get("primary") != updates[r["id"]]["primary"]
        )
        cat.set_labels(updates)
    print(
        f"relabelled {len(updates)} rows with {labeller.version}; {changed} changed their primary label"
    )
    return 0


def _archive_days(folder: Path) -> list:
    from astro_exp.apod.api import ApiItemError, parse_api_item

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


def cmd_label_report(cfg: DictConfig) -> int:
    from astro_exp.data.labels import Labeller, load_label_config

    labeller = Labeller(load_label_config(cfg.dataset.labels))
    days = _archive_days(Path(_required(cfg, "archive")))
    t0 = time.perf_counter()
    results = [(d, labeller.label(d.title, d.explanation)) for d in days]
    rate = len(results) / max(time.perf_counter() - t0, 1e-9)
    print(f"{len(days)} days with text, labelled by {labeller.version} ({rate:.0f} days/s)\n")
    images = [(d, r) for d, r in results if d.media_type == "image"]
    classes = labeller.label_classes(include_other=True)
    primary_all = Counter(r.primary for _, r in results)
    primary_img = Counter(r.primary for _, r in images)
    in_all = Counter(lab for _, r in images for lab in r.all)
    rows = [
        (
            c,
            primary_all[c],
            primary_img[c],
            f"{100 * primary_img[c] / max(len(images), 1):.1f}%",
            in_all[c],
        )
        for c in classes
    ]
    print(
        report_table(
            "primary label",
            ("label", "all days", "picture days", "share", "in 'all' (multilabel)"),
            rows,
        )
    )
    multi = sum(1 for _, r in images if len(r.all) > 1)
    print(f"\npicture days with more than one label: {multi} of {len(images)}")
    by_decade = Counter((d.date.year // 5 * 5, r.primary) for d, r in images)
    spans = sorted({y for y, _ in by_decade})
    print()
    print(
        report_table(
            "primary label by 5 years (picture days)",
            ("from", *classes),
            [(y, *[by_decade[(y, c)] for c in classes]) for y in spans],
        )
    )
    if cfg.dataset.show:
        print()
        for d, r in random.Random(cfg.dataset.seed).sample(
            results, min(int(cfg.dataset.show), len(results))
        ):
            print(f"{r.primary:12s} {d.date} {d.title[:70]}")
    return 0


def cmd_check_labels(cfg: DictConfig) -> int:
    """Agreement, per-class precision/recall and the wrong texts of the weak labeller, over the
    pictures of a thumbnail folder that a person labelled (the texts as training reads them)."""
    import yaml

    from astro_exp.config import read_conf
    from astro_exp.data.label_check import check_labeller
    from astro_exp.data.label_files import read_label_file
    from astro_exp.data.labels import Labeller, load_label_config
    from astro_exp.files import atomic_write
    from astro_exp.sources.apod_catalog import ApodThumbsSource

    gold = Path(str(_required(cfg, "gold"))).expanduser()
    rows = read_label_file(gold)
    folder = Path(str(cfg.dataset.thumbs)).expanduser() if cfg.dataset.thumbs else gold.parent
    fields = yaml.safe_load(
        read_conf("source/apod_thumbs.yaml")
    )  # the texts as source=apod_thumbs reads them
    source = ApodThumbsSource(
        str(folder),
        metadata=fields["metadata"],
        path_field=fields["path_field"],
        title_fields=fields["title_fields"],
        explanation_fields=fields["explanation_fields"],
        title_from_filename=fields["title_from_filename"],
    )
    labeller = Labeller(load_label_config(cfg.dataset.labels))
    chk = check_labeller(labeller, source.records(), rows)
    print(
        f"{chk.n} pictures, labelled by {labeller.version}: agreement {chk.agreement:.3f} "
        f"({chk.agreement_clear:.3f} on the ones marked clear); {chk.unmatched} labelled pictures have no text\n"
    )
    table = [
        (
            c,
            f"{v['precision']:.3f}",
            f"{v['recall']:.3f}",
            f"{v['f1']:.3f}",
            int(v["support"]),
            int(v["predicted"]),
        )
        for c, v in chk.per_class.items()
    ]
    print(
        report_table(
            "weak label vs careful label",
            ("class", "precision", "recall", "F1", "careful", "weak"),
            table,
        )
    )
    print()
    head = ("careful \\ weak", *chk.classes)
    print(
        report_table(
            "confusion (rows: careful label)",
            head,
            [(c, *r) for c, r in zip(chk.classes, chk.confusion, strict=True)],
        )
    )
    if int(cfg.dataset.show):
        print(
            f"\n{min(int(cfg.dataset.show), len(chk.wrong))} of the {len(chk.wrong)} texts it gets wrong:"
        )
        for w in chk.wrong[: int(cfg.dataset.show)]:
            print(f"  careful {w['gold']:<7} weak {w['weak']:<7} {w['title'][:60]!r} {w['scores']}")
    if cfg.dataset.out:
        atomic_write(Path(str(cfg.dataset.out)), json.dumps(chk.to_json(), indent=2))
    return 0


def cmd_label_sheet(cfg: DictConfig) -> int:
    from PIL import Image, ImageDraw

    from astro_exp.data.labels import Labeller, load_label_config
    from astro_exp.imageio import decode_picture
    from astro_exp.sources.apod_catalog import ApodThumbsSource

    labeller = Labeller(load_label_config(cfg.dataset.labels))
    src = ApodThumbsSource(
        _required(cfg, "thumbs"),
        title_fields=["candidates.0.title", "candidates.0.title_archivepix"],
        explanation_fields=["candidates.0.explanation"],
        labels=labeller,
    )
    recs, seen = [], set()
    for r in src.records():  # one frame per animation, as training sees them
        key = re.sub(r"-\d+$", "", Path(r["file"]).stem)
        if (src.root / r["file"]).is_file() and key not in seen:
            seen.add(key)
            recs.append(r)
    picked = random.Random(cfg.dataset.seed).sample(recs, min(int(cfg.dataset.n), len(recs)))
    cols, tw, th, cap = int(cfg.dataset.cols), 240, 180, 34
    rows_n = (len(picked) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tw, rows_n * (th + cap)), "white")
    draw = ImageDraw.Draw(sheet)
    lines = []
    for i, rec in enumerate(picked):
        res = labeller.label(rec["title"], rec["explanation"])
        thumb = decode_picture(  # decoded at a reduced JPEG scale: it is shrunk to a thumbnail
            src.root / rec["file"],
            max_pixels=None,
            max_bytes=None,
            exif_transpose=False,
            draft_size=(2 * tw, 2 * th),
        ).resize((tw - 4, th - 4))
        x, y = (i % cols) * tw, (i // cols) * (th + cap)
        sheet.paste(thumb, (x + 2, y + 2))
        draw.text((x + 3, y + th), f"{i}: {'+'.join(res.all)}", fill="black")
        draw.text((x + 3, y + th + 14), rec["title"][:38], fill="gray")
        lines.append(f"{i}\t{res.primary}\t{'+'.join(res.all)}\t{rec['file']}\t{rec['title']}")
    out = Path(cfg.dataset.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    out.with_suffix(".tsv").write_text(
        "index\tprimary\tall\tfile\ttitle\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    print(f"wrote {out} and {out.with_suffix('.tsv')} ({len(picked)} pictures, {labeller.version})")
    return 0


# -- sharing: export / import / merge / publish / pull -------------------------------------------
def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The share settings (conf/share/default.yaml with the command line's overrides)."""
    settings = OmegaConf.to_container(cfg.share, resolve=True)
    assert isinstance(settings, dict)
    return settings


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _bundle_filter(cfg: DictConfig) -> BundleFilter:
    from astro_exp.sharing import BundleFilter

    s = cfg.dataset
    return BundleFilter(
        since=_text(s.since),
        until=_text(s.until),
        sources=_list(s.source) or None,
        status=_text(s.status) or "ok",
        labels=_text(s.labels),
    )


def cmd_export(cfg: DictConfig) -> int:
    from astro_exp.sharing import export_bundle

    out = Path(str(_required(cfg, "out")))
    result = export_bundle(
        Path(cfg.data_dir), out, _bundle_filter(cfg), creator=_text(cfg.dataset.creator)
    )
    print(result.line())
    return 0


def cmd_import(cfg: DictConfig) -> int:
    from astro_exp.sharing import bundle_limits, import_bundle

    limits = bundle_limits(_settings(cfg))
    result = import_bundle(str(_required(cfg, "bundle")), Path(cfg.data_dir), limits)
    print(result.line())
    return 0


def cmd_merge(cfg: DictConfig) -> int:
    from astro_exp.sharing import bundle_limits, merge_bundles, merge_rules

    bundles = _list(_required(cfg, "bundles"))
    settings = _settings(cfg)
    target = Path(cfg.dataset.out) if cfg.dataset.out else Path(cfg.data_dir)
    report = merge_bundles(
        bundles,
        target,
        merge_rules(settings),
        bundle_limits(settings),
        report=_text(cfg.dataset.report),
    )
    print(report.text())
    print(f"\nreport: {report.paths['json']} and {report.paths['text']}")
    return 0


def cmd_publish(cfg: DictConfig) -> int:
    from astro_exp.sharing import bundle_limits, export_bundle, open_bundle
    from astro_exp.sharing.artifacts import check_name, publish

    name = check_name(str(_required(cfg, "artifact")))
    settings = _settings(cfg)
    data_dir = Path(cfg.data_dir)
    if cfg.dataset.bundle:
        bundle = Path(cfg.dataset.bundle)
        with open_bundle(
            bundle, bundle_limits(settings)
        ) as vb:  # never publish a bundle that would be refused
            manifest = vb.manifest
    else:
        bundle = Path(cfg.dataset.out or data_dir / "bundles" / f"{name}.tar.gz")
        result = export_bundle(
            data_dir, bundle, _bundle_filter(cfg), creator=_text(cfg.dataset.creator)
        )
        print(result.line())
        manifest = result.manifest
    meta = {
        k: manifest.get(k) for k in ("format_version", "created_at", "creator", "filter", "labels")
    }
    meta.update(pictures=len(manifest["pictures"]), files=len(manifest["files"]))
    offline = str(cfg.dataset.offline).lower() in ("1", "true", "yes")
    done = publish(
        bundle,
        name,
        settings.get("wandb") or {},
        metadata=meta,
        aliases=_list(cfg.dataset.aliases),
        run_dir=data_dir,
        offline=offline,
    )
    print(done.line())
    return 0


def cmd_pull(cfg: DictConfig) -> int:
    from astro_exp.sharing import bundle_limits, import_bundle
    from astro_exp.sharing.artifacts import parse_ref, pull

    settings = _settings(cfg)
    wb = settings.get("wandb") or {}
    ref = parse_ref(
        str(_required(cfg, "artifact")), str(wb.get("project") or "astro-exp"), wb.get("entity")
    )
    data_dir = Path(cfg.data_dir)
    for bundle in pull(ref, data_dir / "bundles" / "pulled", wb):
        print(import_bundle(bundle, data_dir, bundle_limits(settings)).line())
    return 0


RUN = {
    "stats": cmd_stats,
    "relabel": cmd_relabel,
    "label-report": cmd_label_report,
    "check-labels": cmd_check_labels,
    "label-sheet": cmd_label_sheet,
    "export": cmd_export,
    "import": cmd_import,
    "merge": cmd_merge,
    "publish": cmd_publish,
    "pull": cmd_pull,
}


@command("dataset", name=_command_name, prepare=prepare, shorthand={"dataset.": "", "share.": ""})
def run(cfg: DictConfig) -> int:
    """Run the chosen command; 0 on success; a bad setting or bundle: one line, exit status 2."""
    cmd = cfg.dataset.cmd
    if cmd is None:
        raise ConfigError(
            f"pick a command: {', '.join(COMMANDS)} (python scripts/dataset.py --help)"
        )
    return int(RUN[str(cmd)](cfg))


def main(argv: list[str] | None = None) -> int:
    """``run`` as the exit status: 0, or 2 after the one-line error (returned, not raised, so a
    caller in Python, as scripts/dataset.py's callers always could, gets the number)."""
    try:
        return int(run(argv) or 0)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


if __name__ == "__main__":
    main()
