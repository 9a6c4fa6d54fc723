"""Rank the runs of one or more run/multirun folders: a table, a CSV and a bar chart.

    python scripts/compare.py outputs/multirun/2026-11-24/15-30-00
    python scripts/compare.py outputs/runs/ --metric test/acc
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astro_exp.tracking.compare import find_runs, load_run, plot_bar, rank_runs, table, write_csv  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="+", type=Path, help="run or multirun folders")
    parser.add_argument("--metric", default=None, help="rank by this metrics.json key (default: the runs' optimized_metric, else test/f1_macro)")
    parser.add_argument("--mode", choices=["max", "min"], default="max")
    parser.add_argument("--out", type=Path, default=None, help="where comparison.csv/png go (default: the first folder)")
    args = parser.parse_args(argv)

    paths = find_runs(*args.dirs)
    if not paths:
        print(f"error: no run with a metrics.json under {', '.join(map(str, args.dirs))}; "
              "point compare.py at outputs/runs/... or outputs/multirun/...", file=sys.stderr)  # fmt: skip
        return 2
    runs = [load_run(p) for p in paths]
    metric = args.metric or next((r.optimized_metric for r in runs if r.optimized_metric), None) or "test/f1_macro"
    if metric.startswith("val/") and args.metric is None:
        metric = "test/" + metric[4:]  # rank on held-out test, the sweep optimised val
    ranked = rank_runs(runs, metric, args.mode)
    out = args.out or args.dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table(ranked, metric, root=args.dirs[0])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    csv_path = write_csv(header, rows, out / "comparison.csv")
    png_path = plot_bar(ranked, metric, out / "comparison.png")
    print(f"\n{len(runs)} runs ranked by {metric} ({args.mode}); wrote {csv_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
