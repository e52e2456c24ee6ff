#!/usr/bin/env python3
"""Runs `transcriptile bench core` (one or more builds) and PyTorch's twin on the same cases in
interleaved rounds, beside a chosen load on the same cores, and prints each side's median round
(range) and the median of the per-round ratios to PyTorch (range): the way Docs/Benchmarks.md
measures against PyTorch on a noisy machine.

Loads: quiet; one (a steady busy process, `yes`); two (two of them); bursty (busy 50 ms, idle
50 ms, as a loader waking per batch).

Examples:
  launch/compare/interleaved.py --filter unet .build/release/transcriptile
  launch/compare/interleaved.py --load bursty --rounds 5 --filter denoiser old/transcriptile .build/release/transcriptile
  ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell launch/compare/interleaved.py --filter unet BIN
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LOADS = {
    "quiet": [],
    "one": [["yes"]],
    "two": [["yes"], ["yes"]],
    "bursty": [["bash", "-c", "while :; do timeout 0.05 yes >/dev/null; sleep 0.05; done"]],
}


def cases(output):
    """{case: value} from the rows of a bench table (name, value, unit, ...)."""
    found = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#") and fields[2].startswith("ms"):
            try:
                found[fields[0]] = float(fields[1])
            except ValueError:
                pass
    return found


def run(command, env):
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"interleaved: {' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return cases(result.stdout)


def spread(values):
    values = sorted(values)
    return f"{statistics.median(values):8.1f} ({values[0]:.1f}–{values[-1]:.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+", help="transcriptile executables to compare (each a side)")
    parser.add_argument("--load", choices=LOADS, default="quiet")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--filter", default="unet", help="cases whose name contains this text (both sides)")
    parser.add_argument("--python", default=sys.executable, help="the Python with torch (default: this one)")
    args = parser.parse_args()
    for binary in args.binaries:
        if not os.access(binary, os.X_OK):
            sys.exit(f"interleaved: {binary} is not an executable; build with `swift build -c release`")
    if args.rounds < 1 or args.repeats < 1 or args.threads < 1:
        sys.exit("interleaved: --rounds, --repeats and --threads must be at least 1")

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    twin = Path(__file__).with_name("pytorch_core.py")
    sides = [(f"{i}:{Path(b).name}", [b, "bench", "core", "--filter", args.filter, "--threads", str(args.threads),
                                      "--repeats", str(args.repeats)]) for i, b in enumerate(args.binaries)]
    sides.append(("pytorch", [args.python, str(twin), "--filter", args.filter, "--threads", str(args.threads),
                              "--repeats", str(args.repeats)]))
    results = {name: [] for name, _ in sides}  # per side, a {case: ms} per round

    loads = [subprocess.Popen(c, stdout=subprocess.DEVNULL, start_new_session=True) for c in LOADS[args.load]]
    try:
        time.sleep(1 if loads else 0)
        for number in range(1, args.rounds + 1):
            for name, command in sides:
                results[name].append(run(command, env))
                print(f"round {number}/{args.rounds} {args.load}: {name} {results[name][-1]}", file=sys.stderr, flush=True)
    finally:
        for process in loads:
            os.killpg(process.pid, 15)

    shared = sorted(set.intersection(*(set(r) for rounds in results.values() for r in rounds)))
    if not shared:
        sys.exit(f"interleaved: no case matching '{args.filter}' was reported by every side")
    print(f"# {args.load}, {args.threads} thread(s), {args.rounds} rounds of --repeats {args.repeats}: "
          "ms, median round (range); ratio = median of per-round ratios to PyTorch (range)")
    for case in shared:
        torch = [r[case] for r in results["pytorch"]]
        print(f"{case}\n  {'pytorch':24s} {spread(torch)}")
        for name, _ in sides[:-1]:
            ours = [r[case] for r in results[name]]
            ratios = [o / t for o, t in zip(ours, torch)]
            print(f"  {name:24s} {spread(ours)}  ratio {statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
