"""make bench's report: medians, spreads and goals over the phases scripts/bench.py wrote.

    python scripts/bench_report.py RESULTS_DIR_OF_SIZE...   (the smaller size first)

Prints a table per size, then one JSON object as the last line; exits 1 when a goal is
missed. Every figure is the median of the repetitions, with its spread (min and max); the
ratio of a size is the median import over the median baseline, and its spread the lowest
and highest ratio of one repetition's pair.
"""

import glob
import json
import os
import statistics
import sys

MAX_RATIO = 1.10  # the import against the same-shape baseline
MAX_REIMPORT_SHARE = 0.05  # a re-import of N duplicates against the import of N
MAX_MEMORY_GROWTH = 1.10  # each path's peak at the larger size against the smaller
MAX_FIRST_LINE_SECONDS = 5.0
MAX_FIRST_LINE_SPREAD = 1.0  # the time to first line at the two sizes


def load(folder):
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "*-*.json"))):
        with open(path) as handle:
            run = json.load(handle)
        runs.setdefault(run["phase"], []).append(run)
    return runs


def spread(values):
    values = [value for value in values if value is not None]
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "runs": len(values),
    }


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def total_cpu(run):
    figures = [value for value in run["cpu_seconds"].values() if value is not None]
    return sum(figures) if figures else None


def phase_summary(runs, n):
    summary = {
        "seconds": spread([run["seconds"] for run in runs]),
        "queries_per_1000": round(median([run["queries"] for run in runs]) * 1000 / n, 1),
        "peak_mb": spread([run["peak_mb"] for run in runs]),
        "cpu_seconds": {
            name: spread([run["cpu_seconds"][name] for run in runs])
            for name in ("odoo", "postgresql", "sandbox")
        },
    }
    for key in ("first_line_seconds", "first_slice_seconds", "first_slice_peak_mb"):
        if key in runs[0]:
            summary[key] = spread([run[key] for run in runs])
    return summary


def size_summary(folder):
    runs = load(folder)
    n = runs["import"][0]["n"]
    result = {"transactions": n}
    for phase in ("import", "baseline", "reimport", "first", "single"):
        if phase in runs:
            result[phase] = phase_summary(runs[phase], n)
    imports = {run["repetition"]: run["seconds"] for run in runs["import"]}
    baselines = {run["repetition"]: run["seconds"] for run in runs["baseline"]}
    pairs = [imports[rep] / baselines[rep] for rep in imports if rep in baselines]
    result["ratio"] = round(
        result["import"]["seconds"]["median"] / result["baseline"]["seconds"]["median"], 3
    )
    result["ratio_spread"] = [round(min(pairs), 3), round(max(pairs), 3)]
    # The same comparison in CPU seconds (Odoo, PostgreSQL and the sandbox together): what
    # the import costs the machine, whatever else the machine runs meanwhile.
    cpu = {
        phase: median([total_cpu(run) for run in runs[phase]]) for phase in ("import", "baseline")
    }
    result["cpu_ratio"] = (
        round(cpu["import"] / cpu["baseline"], 3) if cpu["import"] and cpu["baseline"] else None
    )
    result["reimport_share"] = round(
        result["reimport"]["seconds"]["median"] / result["import"]["seconds"]["median"], 4
    )
    if "single" in result:
        result["single_create_ratio"] = round(
            result["import"]["seconds"]["median"] / result["single"]["seconds"]["median"], 3
        )
    return result


def cpu_text(phase):
    parts = []
    for name in ("odoo", "postgresql", "sandbox"):
        figure = phase["cpu_seconds"][name]
        if figure is not None:
            parts.append(f"{name} {figure['median']:.1f}")
    return ", ".join(parts) or "not measured"


def seconds_text(figure):
    return f"{figure['median']:.2f} s ({figure['min']:.2f}–{figure['max']:.2f})"


def print_size(result):
    n = result["transactions"]
    print(f"--- N = {n:,} ({result['import']['seconds']['runs']} repetitions) ---")
    for phase, label in (
        ("import", "scheduled import"),
        ("baseline", "same-shape baseline"),
        ("reimport", "re-import (duplicates)"),
        ("first", "first import (page + background)"),
        ("single", "single create (reference)"),
    ):
        if phase not in result:
            continue
        figures = result[phase]
        print(
            f"{label:34} {seconds_text(figures['seconds']):28} "
            f"{figures['queries_per_1000']:>8} queries/1,000  "
            f"peak {figures['peak_mb']['median']:.1f} MB"
            f"  CPU s: {cpu_text(figures)}"
        )
    first = result["first"]
    print(
        f"{'time to first line':34} {seconds_text(first['first_line_seconds'])}, "
        f"first slice peak {first['first_slice_peak_mb']['median']:.1f} MB"
    )
    print(
        f"{'ratio import / baseline':34} {result['ratio']} "
        f"(pairs {result['ratio_spread'][0]}–{result['ratio_spread'][1]})"
        + (
            f"; against the single create {result['single_create_ratio']}"
            if "single_create_ratio" in result
            else ""
        )
    )
    if result["cpu_ratio"] is not None:
        print(f"{'ratio in CPU seconds':34} {result['cpu_ratio']}")
    print(f"{'re-import share of the import':34} {result['reimport_share'] * 100:.1f} %")


def goals(small, large):
    missed = []
    for result in (small, large) if small is not large else (small,):
        n = result["transactions"]
        if result["ratio"] > MAX_RATIO:
            missed.append(f"N={n}: import/baseline {result['ratio']} > {MAX_RATIO}")
        if result["reimport_share"] > MAX_REIMPORT_SHARE:
            missed.append(
                f"N={n}: re-import {result['reimport_share'] * 100:.1f} % of the import "
                f"> {MAX_REIMPORT_SHARE * 100:.0f} %"
            )
        first_line = result["first"]["first_line_seconds"]["median"]
        if first_line > MAX_FIRST_LINE_SECONDS:
            missed.append(
                f"N={n}: first line after {first_line:.2f} s > {MAX_FIRST_LINE_SECONDS} s"
            )
    if small is not large:
        for path, key in (
            ("scheduled import", ("import", "peak_mb")),
            ("first import", ("first", "peak_mb")),
            ("waiting page's slice", ("first", "first_slice_peak_mb")),
        ):
            low = small[key[0]][key[1]]["median"]
            high = large[key[0]][key[1]]["median"]
            if high > MAX_MEMORY_GROWTH * low:
                missed.append(
                    f"{path}: peak {high:.1f} MB at N={large['transactions']} > "
                    f"{MAX_MEMORY_GROWTH} × {low:.1f} MB at N={small['transactions']}"
                )
        gap = abs(
            large["first"]["first_line_seconds"]["median"]
            - small["first"]["first_line_seconds"]["median"]
        )
        if gap >= MAX_FIRST_LINE_SPREAD:
            missed.append(f"time to first line differs by {gap:.2f} s between the sizes")
    return missed


def main():
    results = [size_summary(folder) for folder in sys.argv[1:]]
    for result in results:
        print_size(result)
    missed = goals(results[0], results[-1])
    for goal in missed:
        print(f"missed: {goal}")
    print(
        json.dumps(
            {
                "sizes": [result["transactions"] for result in results],
                "results": results,
                "goals": {
                    "max_ratio": MAX_RATIO,
                    "max_reimport_share": MAX_REIMPORT_SHARE,
                    "max_memory_growth": MAX_MEMORY_GROWTH,
                    "max_first_line_seconds": MAX_FIRST_LINE_SECONDS,
                    "max_first_line_spread": MAX_FIRST_LINE_SPREAD,
                },
                "missed": missed,
            }
        ),
        flush=True,
    )
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
