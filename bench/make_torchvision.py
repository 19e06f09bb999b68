#!/usr/bin/python3
"""Writes the torchvision CNNs used by the speed benchmarks as ONNX, without PyTorch.

Usage: /usr/bin/python3 make_torchvision.py OUTDIR [model ...]
Models default to: resnet18 resnet50 mobilenet_v2 vgg16_bn

$ENGINE_DATA/tools/export_torchvision.py exports these models with torch.onnx.export and needs
Debian's python3-torch and python3-torchvision. Where those are missing, this script writes the
same graphs with python3-onnx and python3-numpy only: the torchvision architectures at 224x224,
in the form torch.onnx.export (opset 13, eval mode, constant folding) gives them -- each
BatchNormalization already folded into the Conv before it (Conv with bias), ReLU6 as Clip(0, 6),
Linear as Gemm(transB=1), adaptive average pooling to 1x1 as GlobalAveragePool, vgg's 7x7
adaptive pooling as a 1x1 AveragePool, Dropout gone -- with input `input` [batch,3,224,224] and
output `logits` [batch,1000].

Weights are seeded random (He-normal convolutions, BN-like per-channel scales and shifts folded
in, the last convolution of each residual branch scaled down so that activations stay bounded
through 16 or 50 layers). Fine for speed; meaningless for accuracy. The layer shapes, and so the
amount of work per layer, are exactly torchvision's.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "vgg16_bn"]


class Graph:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = {}

    def name(self, op):
        n = self.count.get(op, 0)
        self.count[op] = n + 1
        return f"/{op}_{n}"

    def const(self, base, arr):
        nm = f"{base}.{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(arr, nm))
        return nm

    def node(self, op, inputs, **attrs):
        nm = self.name(op)
        out = nm + "_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=nm, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, pad=None, groups=1, gain=1.0):
        """Conv + folded BatchNorm: He-normal weights times a BN-like per-channel scale."""
        pad = k // 2 if pad is None else pad
        fan_in = cin // groups * k * k
        w = self.rng.standard_normal((cout, cin // groups, k, k), dtype=np.float32)
        w *= np.float32(gain * np.sqrt(2.0 / fan_in))
        w *= self.rng.uniform(0.5, 1.0, (cout, 1, 1, 1)).astype(np.float32)
        b = (0.1 * self.rng.standard_normal(cout)).astype(np.float32)
        return self.node("Conv", [x, self.const("conv.weight", w), self.const("conv.bias", b)],
                         kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                         group=groups, dilations=[1, 1])

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x):
        lo = self.const("clip.min", np.array(0.0, np.float32))
        hi = self.const("clip.max", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi])

    def gemm(self, x, cin, cout):
        w = (self.rng.standard_normal((cout, cin), dtype=np.float32) *
             np.float32(np.sqrt(1.0 / cin)))
        b = (0.01 * self.rng.standard_normal(cout)).astype(np.float32)
        return self.node("Gemm", [x, self.const("fc.weight", w), self.const("fc.bias", b)],
                         alpha=1.0, beta=1.0, transB=1)

    def head(self, x, cin):
        x = self.node("GlobalAveragePool", [x])
        x = self.node("Flatten", [x], axis=1)
        return self.gemm(x, cin, 1000)


def resnet(g, x, block, layers):
    x = g.relu(g.conv(x, 3, 64, 7, stride=2, pad=3))
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               ceil_mode=0, dilations=[1, 1])
    cin = 64
    expansion = 1 if block == "basic" else 4
    for i, n in enumerate(layers):
        planes = 64 << i
        for j in range(n):
            stride = 2 if (i > 0 and j == 0) else 1
            if block == "basic":
                y = g.relu(g.conv(x, cin, planes, 3, stride))
                y = g.conv(y, planes, planes, 3, 1, gain=0.3)
            else:  # torchvision Bottleneck (v1.5: stride on the 3x3 convolution)
                y = g.relu(g.conv(x, cin, planes, 1))
                y = g.relu(g.conv(y, planes, planes, 3, stride))
                y = g.conv(y, planes, planes * 4, 1, gain=0.3)
            if stride != 1 or cin != planes * expansion:
                x = g.conv(x, cin, planes * expansion, 1, stride, pad=0)
            x = g.relu(g.node("Add", [y, x]))
            cin = planes * expansion
    return g.head(x, cin)


def mobilenet_v2(g, x):
    x = g.relu6(g.conv(x, 3, 32, 3, stride=2))
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for j in range(n):
            stride = s if j == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = g.relu6(g.conv(y, cin, hidden, 1))
            y = g.relu6(g.conv(y, hidden, hidden, 3, stride, groups=hidden))
            residual = stride == 1 and cin == c
            y = g.conv(y, hidden, c, 1, gain=0.3 if residual else 1.0)
            x = g.node("Add", [x, y]) if residual else y
            cin = c
    x = g.relu6(g.conv(x, cin, 1280, 1))
    return g.head(x, 1280)


def vgg16_bn(g, x):
    cin = 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"]:
        if v == "M":
            x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0],
                       ceil_mode=0, dilations=[1, 1])
        else:
            x = g.relu(g.conv(x, cin, v, 3))
            cin = v
    x = g.node("AveragePool", [x], kernel_shape=[1, 1], strides=[1, 1], pads=[0, 0, 0, 0],
               ceil_mode=0, count_include_pad=0)
    x = g.node("Flatten", [x], axis=1)
    x = g.relu(g.gemm(x, 512 * 7 * 7, 4096))
    x = g.relu(g.gemm(x, 4096, 4096))
    return g.gemm(x, 4096, 1000)


def build(name):
    g = Graph(seed=sum(map(ord, name)))
    if name == "resnet18":
        out = resnet(g, "input", "basic", [2, 2, 2, 2])
    elif name == "resnet50":
        out = resnet(g, "input", "bottleneck", [3, 4, 6, 3])
    elif name == "mobilenet_v2":
        out = mobilenet_v2(g, "input")
    elif name == "vgg16_bn":
        out = vgg16_bn(g, "input")
    else:
        raise SystemExit(f"unknown model {name} (one of {MODELS})")
    assert g.nodes[-1].output[0] == out
    g.nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        initializer=g.inits)
    model = helper.make_model(graph, producer_name="engine-bench-make_torchvision",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "models"
    names = sys.argv[2:] or MODELS
    os.makedirs(outdir, exist_ok=True)
    for name in names:
        model = build(name)
        path = os.path.join(outdir, name + ".onnx")
        tmp = path + ".tmp"
        onnx.save(model, tmp)
        os.replace(tmp, path)
        print("wrote", path, os.path.getsize(path) // (1 << 20), "MiB", flush=True)


if __name__ == "__main__":
    main()
