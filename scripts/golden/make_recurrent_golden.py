#!/usr/bin/env python3
"""Golden data for crema's LSTM and RNN layers (tests/test_recurrent_layers.cpp), computed by
PyTorch's own nn.LSTM and nn.RNN (float64).

Caffe's recurrent layers differ from PyTorch's in these ways, undone here:
  - LSTM gate rows are i, f, o, g in Caffe and i, f, g, o in PyTorch (blocks 2 and 3 swap);
  - Caffe has one bias (PyTorch's b_ih + b_hh);
  - cont_t = 0 restarts a stream from a zero state: PyTorch runs each stream's segments
    between restarts separately, from zero;
  - the static input x_static (LSTM case) is W_xc_static x_static added at every timestep:
    PyTorch sees it as extra input columns, [x_t, x_static];
  - RNN's top is o_t = tanh(W_ho h_t + b_o), an output transform PyTorch's RNN lacks.
The objective is sum(top * r) for a fixed random r, so its gradients are the backward pass
of crema's layer given top gradient r.
Writes tests/data/golden/recurrent.h5:
  lstm/x, lstm/cont, lstm/x_static, lstm/r, lstm/top, lstm/grad/x, lstm/grad/x_static,
  lstm/init/<i>, lstm/grad/<i>    parameters and their gradients in Caffe's blob order
  rnn/...                         the same without x_static
Run: python3 scripts/golden/make_recurrent_golden.py   (needs torch, h5py, numpy; test-time only)
"""
import os

import h5py
import numpy as np
import torch

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "golden", "recurrent.h5")
rng = np.random.default_rng(11)
f32 = lambda a: np.asarray(a, dtype=np.float32)
t64 = lambda a, grad=False: torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def segments(cont_column):
    """[start, end) ranges of one stream between restarts (cont == 0)."""
    starts = [t for t in range(len(cont_column)) if t == 0 or cont_column[t] == 0]
    return list(zip(starts, starts[1:] + [len(cont_column)]))


def run_streams(module, inputs, cont):
    """inputs (T, N, F) through `module` per stream and segment, each from a zero state."""
    columns = []
    for n in range(inputs.shape[1]):
        parts = [module(inputs[a:b, n:n + 1, :])[0] for a, b in segments(cont[:, n])]
        columns.append(torch.cat(parts, dim=0))
    return torch.cat(columns, dim=1)


def lstm_case(f):
    T, N, I, S, H = 5, 3, 4, 2, 3
    x = f32(rng.normal(0, 1, size=(T, N, I)))
    xs = f32(rng.normal(0, 1, size=(N, S)))
    cont = f32([[0, 0, 0], [1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 1, 1]])
    r = f32(rng.uniform(-1, 1, size=(T, N, H)))
    caffe = [f32(rng.normal(0, 0.5, size=(4 * H, I))), f32(rng.normal(0, 0.3, size=(4 * H,))),
             f32(rng.normal(0, 0.5, size=(4 * H, S))), f32(rng.normal(0, 0.5, size=(4 * H, H)))]
    perm = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])  # its own inverse
    lstm = torch.nn.LSTM(I + S, H).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(t64(np.concatenate([caffe[0], caffe[2]], axis=1)[perm]))
        lstm.weight_hh_l0.copy_(t64(caffe[3][perm]))
        lstm.bias_ih_l0.copy_(t64(caffe[1][perm]))
        lstm.bias_hh_l0.zero_()
    xt, xst = t64(x, True), t64(xs, True)
    inputs = torch.cat([xt, xst.unsqueeze(0).expand(T, N, S)], dim=2)
    top = run_streams(lstm, inputs, cont)
    (top * t64(r)).sum().backward()
    gih = lstm.weight_ih_l0.grad.numpy()[perm]
    grads = [gih[:, :I], lstm.bias_ih_l0.grad.numpy()[perm], gih[:, I:], lstm.weight_hh_l0.grad.numpy()[perm]]
    for name, v in [("x", x), ("x_static", xs), ("cont", cont), ("r", r), ("top", top.detach().numpy()),
                    ("grad/x", xt.grad.numpy()), ("grad/x_static", xst.grad.numpy())]:
        f.create_dataset("lstm/" + name, data=f32(v))
    for i, (v, g) in enumerate(zip(caffe, grads)):
        f.create_dataset(f"lstm/init/{i}", data=v)
        f.create_dataset(f"lstm/grad/{i}", data=f32(g))


def rnn_case(f):
    T, N, I, H = 4, 2, 3, 3
    x = f32(rng.normal(0, 1, size=(T, N, I)))
    cont = f32([[0, 0], [1, 1], [1, 0], [1, 1]])
    r = f32(rng.uniform(-1, 1, size=(T, N, H)))
    caffe = [f32(rng.normal(0, 0.5, size=(H, I))), f32(rng.normal(0, 0.3, size=(H,))),
             f32(rng.normal(0, 0.5, size=(H, H))), f32(rng.normal(0, 0.5, size=(H, H))),
             f32(rng.normal(0, 0.3, size=(H,)))]
    rnn = torch.nn.RNN(I, H, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t64(caffe[0]))
        rnn.bias_ih_l0.copy_(t64(caffe[1]))
        rnn.weight_hh_l0.copy_(t64(caffe[2]))
        rnn.bias_hh_l0.zero_()
    w_ho, b_o = t64(caffe[3], True), t64(caffe[4], True)
    xt = t64(x, True)
    hidden = run_streams(rnn, xt, cont)
    top = torch.tanh(hidden @ w_ho.T + b_o)
    (top * t64(r)).sum().backward()
    grads = [rnn.weight_ih_l0.grad.numpy(), rnn.bias_ih_l0.grad.numpy(), rnn.weight_hh_l0.grad.numpy(),
             w_ho.grad.numpy(), b_o.grad.numpy()]
    for name, v in [("x", x), ("cont", cont), ("r", r), ("top", top.detach().numpy()), ("grad/x", xt.grad.numpy())]:
        f.create_dataset("rnn/" + name, data=f32(v))
    for i, (v, g) in enumerate(zip(caffe, grads)):
        f.create_dataset(f"rnn/init/{i}", data=v)
        f.create_dataset(f"rnn/grad/{i}", data=f32(g))


with h5py.File(out, "w") as f:
    lstm_case(f)
    rnn_case(f)
