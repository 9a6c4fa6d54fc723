"""Rank the runs of one or more run/multirun folders: a table, comparison.csv and comparison.png.

    python scripts/compare.py outputs/multirun/2026-11-24/15-30-00
    python scripts/compare.py outputs/runs/ --metric test/acc
    python scripts/compare.py sweep_a sweep_b --metric test/ece --out reports/

A run is any folder holding a metrics.json; the columns after the run are the Hydra
overrides that differ between the runs. The default ranking metric is the runs'
optimized_metric (.hydra/config.yaml) when metrics.json has it, else test/f1_macro.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astro_exp.tracking.run_table import (  # noqa: E402 - after the sys.path line, so no install is needed
    common_root,
    default_metric,
    default_mode,
    find_runs,
    format_table,
    load_run,
    plot_bar,
    rank_runs,
    table,
    write_csv,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dirs", nargs="+", type=Path, help="run or multirun folders (searched recursively)"
    )
    parser.add_argument(
        "--metric",
        default=None,
        help="rank by this metrics.json key (default: optimized_metric, else test/f1_macro)",
    )
    parser.add_argument(
        "--mode",
        choices=["max", "min", "auto"],
        default="auto",
        help="max: higher is better; auto (default): min for loss/ece/nll/time keys, else max",
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for comparison.csv/png (default: the first folder given)")  # fmt: skip
    args = parser.parse_args(argv)

    for d in args.dirs:
        if not d.exists():
            print(f"error: {d} does not exist", file=sys.stderr)
            return 2
    runs = []
    for path in find_runs(*args.dirs):
        try:
            runs.append(load_run(path))
        except ValueError as e:
            print(f"warning: skipping {e}", file=sys.stderr)
    if not runs:
        print(f"error: no run with a readable metrics.json under {', '.join(map(str, args.dirs))}; "
              "point compare.py at outputs/runs/... or outputs/multirun/...", file=sys.stderr)  # fmt: skip
        return 2
    metric = args.metric or default_metric(runs)
    if args.metric and all(r.get(metric) is None for r in runs):
        known = sorted({k for r in runs for k in r.metrics if r.get(k) is not None})
        print(
            f"error: no run has {metric!r} in metrics.json; known: {', '.join(known)}",
            file=sys.stderr,
        )
        return 2
    mode = default_mode(metric) if args.mode == "auto" else args.mode

    ranked = rank_runs(runs, metric, mode)
    root = common_root(list(args.dirs))
    out = args.out or args.dirs[0]
    if out.is_file():
        out = out.parent
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(ranked, metric, root=root)
    print(format_table(header, rows))
    csv_path = write_csv(header, rows, out / "comparison.csv")
    png_path = plot_bar(ranked, metric, out / "comparison.png", root=root)
    print(f"\n{len(runs)} runs ranked by {metric} ({mode}); wrote {csv_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
