"""``astro-exp <command> [key=value ...]``: every entry point of the project, one Hydra command each.

The first word picks the command; the rest is that command's Hydra command line
(``astro-exp train model=resnet -m seed=1,2``, ``astro-exp predict --help``). The modules
here hold the commands' code; ``train.py`` and ``scripts/*.py`` only call them, so a
checkout and an installed wheel run the same thing.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

# command -> (module under astro_exp.cli, one line for the usage text)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train, calibrate, evaluate and log one experiment (a sweep with -m)"),
    "scrape": ("scrape", "fetch APOD days into the catalog and image store"),
    "predict": ("predict", "classify pictures (or the catalog) with a trained checkpoint"),
    "serve": ("serve", "the web app: gallery, pictures, classify, anomalies, runs, labels"),
    "watch": ("watch", "watch APOD for new days: fetch, classify, score, alert"),
    "dataset": (
        "dataset",
        "catalog stats, relabelling, label reports; export/import/merge/publish/pull bundles",
    ),
    "evaluate": (
        "evaluate",
        "score a checkpoint against a labelled folder (accuracy, F1, ECE, plots)",
    ),
    "crossval": ("crossval", "k-fold cross-validation of a recipe against a person's labels"),
    "compare-detectors": (
        "compare_detectors",
        "every anomaly detector on one run's cached embeddings (ROC-AUC, AP, ...)",
    ),
    "simulate-review": (
        "simulate_review",
        "what corrections and anomaly marks are worth, simulated with a labels file",
    ),
    "compare": ("compare", "rank the runs of run/multirun folders (table, CSV, bar chart)"),
    "bench": ("bench", "throughput figures of the pipeline (and of predict) as JSON"),
    "bench-web": (
        "bench.web",
        "the web app's response times: a demo catalog, or the APOD archive's 10k/100k rows under load",
    ),
    "bench-scrape": (
        "bench.scrape",
        "the APOD scraper's figures: page parsing, a first sync against a re-sync (local stand-in)",
    ),
    "bench-search": ("bench_search", "an Optuna search with and without pruning, as JSON"),
    "contact-sheet": (
        "contact_sheet",
        "a contact sheet of the synthetic sky renderer, one row per class",
    ),
    "archive-study": (
        "archive_study",
        "which label lever makes the APOD archive help the picture model (argparse: --help)",
    ),
    "docs-tables": ("docs_tables", "render the docs' marked tables from the commands' JSON"),
}
ALIASES = {
    "bench_web": "bench-web",
    "bench_scrape": "bench-scrape",
    "archive_study": "archive-study",
    "bench_search": "bench-search",
    "compare_detectors": "compare-detectors",
    "contact_sheet": "contact-sheet",
    "docs_tables": "docs-tables",
    "simulate_review": "simulate-review",
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: astro-exp <command> [key=value ...] [--help]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "Each command is a Hydra app: `astro-exp <command> --help` lists its settings,",
        "`--cfg job` prints the composed config.",
    ]
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> None:
    """Dispatch on the first word; the rest goes to that command's Hydra main."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        raise SystemExit(0 if args else 2)
    if args[0] == "--version":
        from astro_exp import __version__

        print(f"astro-exp {__version__}")
        return
    name = ALIASES.get(args[0], args[0])
    if name not in COMMANDS:
        from astro_exp.cli.command import fail

        fail(f"unknown command {args[0]!r}; use one of {', '.join(COMMANDS)} (astro-exp --help)")
    module = importlib.import_module(f"astro_exp.cli.{COMMANDS[name][0]}")
    result = module.main(args[1:])
    # an int a command returns is its exit status (dataset, compare); other values (train's
    # metric for a sweeper, bench's figures) are for callers in Python
    if isinstance(result, int) and not isinstance(result, bool) and result:
        raise SystemExit(result)
