#!/usr/bin/env python3
"""Reads a crema run's TensorBoard directory with TensorBoard's own EventAccumulator and
checks that what TensorBoard shows is exactly the run's metrics CSV files: every cell a
scalar at its iteration, the same float32, and nothing else (events a resumed run
replaced must have been purged through its SessionLog START).
Usage: tensorboard_check.py [--raw] EVENTS_DIR GROUP=FILE.csv [GROUP=FILE.csv ...]
  (GROUP is the tag prefix: train, test, test1, ...). Exit 0 when they agree; used by
tests/test_metrics.cpp, which skips it where tensorboard is not installed.
--raw: every event of every file as it is on disk, ignoring SessionLog, as TensorBoard's
default (Rust) loader reads them: a step must appear once, so the replaced events must be
gone from the files themselves.
"""
import csv
import math
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def raw_scalars(folder):
    shown = {}
    for name in sorted(os.listdir(folder)):
        if "tfevents" not in name:
            continue
        for record in RawEventFileLoader(os.path.join(folder, name)).Load():
            event = Event.FromString(record)
            for value in event.summary.value:
                shown.setdefault(value.tag, []).append((event.step, value.simple_value))
    return shown


def main():
    args = sys.argv[1:]
    if len(args) < 2 or (args[0] == "--raw" and len(args) < 3):
        sys.exit(__doc__)
    raw = args[0] == "--raw"
    if raw:
        args = args[1:]
        shown = raw_scalars(args[0])
    else:
        events = EventAccumulator(args[0], size_guidance={"scalars": 0})  # 0: keep every event
        events.Reload()
        shown = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    expected = {}
    for arg in args[1:]:
        group, path = arg.split("=", 1)
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                for name, cell in row.items():
                    if name in ("iter", "wall_time") or cell == "":
                        continue
                    expected.setdefault(f"{group}/{name}", []).append((int(row["iter"]), f32(float(cell))))
    problems = []
    for tag in sorted(set(shown) | set(expected)):
        got, want = sorted(shown.get(tag, [])), sorted(expected.get(tag, []))
        same = len(got) == len(want) and all(
            gs == ws and (gv == wv or (math.isnan(gv) and math.isnan(wv))) for (gs, gv), (ws, wv) in zip(got, want))
        if not same:
            problems.append(f"{tag}: TensorBoard shows {got}, the CSV has {want}")
    if not expected:
        problems.append("the CSV files hold no values")
    for p in problems:
        print(p)
    print(f"{len(expected)} tags, {sum(len(v) for v in expected.values())} values compared; "
          f"{'agree' if not problems else 'DIFFER'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
