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

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from astro_exp.cli.command import command
from astro_exp.errors import ConfigError, DataError

if TYPE_CHECKING:
    from astro_exp.data.labels import Labeller
    from astro_exp.sharing import BundleFilter

Action = Callable[[DictConfig], "str | None"]  # a command: its settings in, the text to print out
RUN: dict[str, Action] = {}  # the commands, in the order --help and errors list them

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
    """The command's setting ``key``; a one-line error that names it when it is not given."""
    value = cfg.dataset.get(key)
    if value is None or value == "" or (isinstance(value, ListConfig) and not len(value)):
        cmd = cfg.dataset.cmd
        raise DataError(f"{cmd} needs {key}=...; see python scripts/dataset.py {cmd} --help")
    return value


def _text(value: Any) -> str | None:
    """A setting as text; None when it is not given."""
    return None if value is None or value == "" else str(value)


def _path(value: Any) -> Path | None:
    """A setting as a path; None when it is not given."""
    return None if _text(value) is None else Path(str(value))


def _labeller(cfg: DictConfig) -> Labeller:
    """The weak labeller of ``labels=NAME`` (conf/labels/NAME)."""
    from astro_exp.data.labels import Labeller, load_label_config

    return Labeller(load_label_config(cfg.dataset.labels))


def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The share settings (conf/share/default.yaml with the command line's overrides)."""
    settings = OmegaConf.to_container(cfg.share, resolve=True)
    assert isinstance(settings, dict)
    return settings


def _bundle_filter(cfg: DictConfig) -> BundleFilter:
    """Which catalog rows an export takes (since, until, source, status, labels)."""
    from astro_exp.sharing import BundleFilter

    s = cfg.dataset
    return BundleFilter(
        since=_text(s.since),
        until=_text(s.until),
        sources=_list(s.source) or None,
        status=_text(s.status) or "ok",
        labels=_text(s.labels),
    )


def _action(name: str) -> Callable[[Action], Action]:
    """Register the decorated function as the command ``name``."""

    def register(fn: Action) -> Action:
        RUN[name] = fn
        return fn

    return register


# -- each command: its settings in, one call, the text to print out (None: it printed its own)
@_action("stats")
def cmd_stats(cfg: DictConfig) -> str:
    from astro_exp.data.catalog_tools import stats_report

    return stats_report(cfg.data_dir, _list(cfg.dataset.source) or None)


@_action("relabel")
def cmd_relabel(cfg: DictConfig) -> str:
    from astro_exp.data.catalog_tools import relabel_catalog

    labeller = _labeller(cfg)
    return relabel_catalog(cfg.data_dir, labeller, _list(cfg.dataset.source) or None)


@_action("label-report")
def cmd_label_report(cfg: DictConfig) -> str:
    from astro_exp.review.label_audit import label_report

    labeller = _labeller(cfg)
    archive = Path(_required(cfg, "archive"))
    return label_report(archive, labeller, int(cfg.dataset.show or 0), cfg.dataset.seed)


@_action("check-labels")
def cmd_check_labels(cfg: DictConfig) -> str:
    """The weak labeller against a person's labels of a thumbnail folder."""
    from astro_exp.review.label_audit import check_labels

    gold = Path(str(_required(cfg, "gold")))
    show, out = int(cfg.dataset.show), _path(cfg.dataset.out)
    return check_labels(gold, _path(cfg.dataset.thumbs), cfg.dataset.labels, show, out)


@_action("label-sheet")
def cmd_label_sheet(cfg: DictConfig) -> str:
    from astro_exp.review.label_audit import label_sheet

    labeller = _labeller(cfg)
    thumbs, d = _required(cfg, "thumbs"), cfg.dataset
    return label_sheet(thumbs, labeller, Path(d.out), int(d.n), int(d.cols), d.seed)


@_action("export")
def cmd_export(cfg: DictConfig) -> str:
    from astro_exp.sharing import export_bundle

    out, creator = Path(str(_required(cfg, "out"))), _text(cfg.dataset.creator)
    return export_bundle(Path(cfg.data_dir), out, _bundle_filter(cfg), creator=creator).line()


@_action("import")
def cmd_import(cfg: DictConfig) -> str:
    from astro_exp.sharing import bundle_limits, import_bundle

    limits = bundle_limits(_settings(cfg))
    return import_bundle(str(_required(cfg, "bundle")), Path(cfg.data_dir), limits).line()


@_action("merge")
def cmd_merge(cfg: DictConfig) -> str:
    from astro_exp.sharing import bundle_limits, merge_bundles, merge_rules

    bundles, settings = _list(_required(cfg, "bundles")), _settings(cfg)
    target = Path(cfg.dataset.out) if cfg.dataset.out else Path(cfg.data_dir)
    rules, limits = merge_rules(settings), bundle_limits(settings)
    rep = merge_bundles(bundles, target, rules, limits, report=_text(cfg.dataset.report))
    return f"{rep.text()}\n\nreport: {rep.paths['json']} and {rep.paths['text']}"


@_action("publish")
def cmd_publish(cfg: DictConfig) -> str:
    from astro_exp.sharing.publishing import publish_data

    name, d = str(_required(cfg, "artifact")), cfg.dataset
    return publish_data(
        name,
        Path(cfg.data_dir),
        _settings(cfg),
        bundle=_path(d.bundle),
        out=_path(d.out),
        selection=_bundle_filter(cfg),
        creator=_text(d.creator),
        aliases=_list(d.aliases),
        offline=str(d.offline).lower() in ("1", "true", "yes"),
    ).line()


@_action("pull")
def cmd_pull(cfg: DictConfig) -> None:
    from astro_exp.sharing.publishing import pull_data

    pull_data(str(_required(cfg, "artifact")), Path(cfg.data_dir), _settings(cfg))


COMMANDS = tuple(RUN)


@command("dataset", name=_command_name, prepare=prepare, shorthand={"dataset.": "", "share.": ""})
def run(cfg: DictConfig) -> int:
    """Run the chosen command; 0 on success; a bad setting or bundle: one line, exit status 2."""
    cmd = cfg.dataset.cmd
    if cmd is None:
        raise ConfigError(
            f"pick a command: {', '.join(COMMANDS)} (python scripts/dataset.py --help)"
        )
    text = RUN[str(cmd)](cfg)
    if text is not None:
        print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``run`` as the exit status: 0, or 2 after the one-line error (returned, not raised, so a
    caller in Python, as scripts/dataset.py's callers always could, gets the number)."""
    try:
        return int(run(argv) or 0)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)


if __name__ == "__main__":
    main()
