#!/usr/bin/env python3
"""Golden TensorBoard records for crema's event writer (tests/test_metrics.cpp), made by
TensorBoard's own protobuf classes (tensorboard.compat.proto) and its own TFRecord writer
(tensorboard.summary.writer.record_writer), so the framing, the CRCs and the field
encoding come from TensorBoard, not from crema's reading of the formats.

Writes tests/data/golden/tensorboard_events.bin, four records:
  1. the file version event ("brain.Event:2") at wall time 1796322488.5
  2. a SessionLog START at step 200, wall time 1796322489.25
  3. scalars at step 0, wall time 1796322490.0: train/loss 2.387383, train/lr 0.01
  4. scalars at step 300, wall time 1796322491.125: test/accuracy[3] 0.815, test/x nan,
     test/y -inf
Run: python3 scripts/golden/make_tensorboard_golden.py   (needs tensorboard; test-time only)
"""
import io
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "golden", "tensorboard_events.bin")


def scalars(wall_time, step, values):
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values])
    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


events = [
    event_pb2.Event(wall_time=1796322488.5, file_version="brain.Event:2"),
    event_pb2.Event(wall_time=1796322489.25, step=200,
                    session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)),
    scalars(1796322490.0, 0, [("train/loss", 2.387383), ("train/lr", 0.01)]),
    scalars(1796322491.125, 300, [("test/accuracy[3]", 0.815), ("test/x", float("nan")), ("test/y", float("-inf"))]),
]
buffer = io.BytesIO()
writer = RecordWriter(buffer)
for e in events:
    writer.write(e.SerializeToString())
with open(out, "wb") as f:
    f.write(buffer.getvalue())
print(f"wrote {out}: {len(events)} records, {len(buffer.getvalue())} bytes")
