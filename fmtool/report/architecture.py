"""A model's structure read from the model itself, for the study's Figures 2 and 8.

torch.fx traces the forward pass, so the graph is what the model computes, branches and all,
for whatever variant, width or image size the checkpoint holds; running the traced graph on one
example input gives every node's output shape (ShapeProp). Nothing here knows the report's
networks: a new layer type or variant shows up by itself.

For drawing, nodes are grouped into units:
- a module whose children are all leaves (ConvUnit, a Sequential of Conv/BatchNorm/LeakyReLU)
  is one unit named by its path (`conv4`, `encoder.0`), listing its leaves;
- any other leaf module (MaxPool, Dropout, a Linear at the top level) is a unit of its own;
- connected tensor operations between modules (torch.cat, flatten, view, the arithmetic of the
  reparameterisation) are one unit, labelled with the expression they compute;
- the input is a unit; the output tuple is not.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

NOISE = {"randn", "randn_like", "rand", "rand_like", "normal"}
_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "·", operator.truediv: "/"}
_WORDS = {"cat": "concatenate", "flatten": "flatten", "view": "reshape", "reshape": "reshape"}


@dataclass
class Unit:
    """One box of the diagram."""

    name: str  # "conv4", "encoder.0", "input", "concatenate", "sample"
    parts: list[str]  # what it does, e.g. ["Conv 3×3, 16→32", "BN", "LeakyReLU"]
    kind: str  # "input", "conv", "pool", "dropout", "linear", "op"
    shape: tuple[int, ...]  # output shape for one example
    inputs: list[int] = field(default_factory=list)  # indices of the units it reads
    level: int = 0  # longest path from the input: units on one level sit side by side


def describe(module: nn.Module) -> tuple[str, str]:
    """(text, kind) of a leaf module: its type and the settings that shape its output."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        kernel = "×".join(map(str, module.kernel_size))
        name = "ConvT" if isinstance(module, nn.ConvTranspose2d) else "Conv"
        stride = f" s{module.stride[0]}" if module.stride[0] != 1 else ""
        bias = " +bias" if module.bias is not None else ""
        return f"{name} {kernel}{stride}, {module.in_channels}→{module.out_channels}{bias}", "conv"
    if isinstance(module, nn.Linear):
        return f"Linear {module.in_features}→{module.out_features}", "linear"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        size = module.kernel_size
        size = size if isinstance(size, int) else size[0]
        return f"{type(module).__name__[:-2]} {size}×{size}", "pool"
    if isinstance(module, nn.Dropout):
        return (f"Dropout {module.p:g}" if module.p else "Dropout 0 (off)"), "dropout"
    if isinstance(module, nn.BatchNorm2d):
        return "BN", "norm"
    return type(module).__name__, "activation"


def trace(model: nn.Module, example: torch.Tensor) -> list[Unit]:
    """The model's units in forward order (see the module docstring), each with its shape for
    `example` (one input, [1, C, H, W]) and the units it reads."""
    graph = fx.symbolic_trace(model)
    was_training = model.training
    model.eval()
    try:
        ShapeProp(graph).propagate(example)
    finally:
        model.train(was_training)
    modules = dict(model.named_modules())
    owner = _owners(graph, modules)
    units: list[Unit] = []
    index: dict[Any, int] = {}  # owner key -> unit index
    for node in graph.graph.nodes:
        key = owner.get(node)
        if key is None:
            continue
        if key not in index:
            index[key] = len(units)
            units.append(Unit(name="", parts=[], kind="op", shape=()))
        unit = units[index[key]]
        meta = node.meta.get("tensor_meta")
        if hasattr(meta, "shape"):
            unit.shape = tuple(meta.shape[1:])
        for source in node.all_input_nodes:
            if owner.get(source) is not None and owner[source] != key \
                    and index[owner[source]] not in unit.inputs:
                unit.inputs.append(index[owner[source]])
        _describe_node(unit, node, key, modules)
    _label_operations(graph, owner, index, units)
    for unit in units:
        unit.level = 1 + max((units[i].level for i in unit.inputs), default=-1)
    return units


def _owners(graph: fx.GraphModule, modules: dict[str, nn.Module]) -> dict[Any, Any]:
    """Node -> the key of its unit: ("module", path), ("input", name) or ("op", first node)."""
    owner: dict[Any, Any] = {}
    for node in graph.graph.nodes:
        if node.op == "placeholder":
            owner[node] = ("input", node.name)
        elif node.op == "call_module":
            parent = node.target.rpartition(".")[0]
            whole = parent and all(not list(child.children())
                                   for child in modules[parent].children())
            owner[node] = ("module", parent if whole else node.target)
        elif node.op in ("call_function", "call_method"):
            # joined to the unit of a tensor operation it reads, else the start of a new one
            joined = [owner[s] for s in node.all_input_nodes
                      if owner.get(s, ("",))[0] == "op"]
            owner[node] = joined[0] if joined else ("op", node.name)
            for other in joined[1:]:  # two operation units meet: one unit from here on
                for member, key in list(owner.items()):
                    if key == other:
                        owner[member] = joined[0]
    return owner


def _describe_node(unit: Unit, node: fx.Node, key: Any, modules: dict[str, nn.Module]) -> None:
    if key[0] == "input":
        unit.name, unit.kind = "input", "input"
    elif key[0] == "module":
        text, kind = describe(modules[node.target])
        unit.name = key[1]
        unit.parts.append(text)
        if unit.kind == "op" or kind in ("conv", "linear"):
            unit.kind = kind


def _label_operations(graph: fx.GraphModule, owner: dict[Any, Any], index: dict[Any, int],
                      units: list[Unit]) -> None:
    """Names each operation unit by what its last node computes, written out from the graph."""
    last: dict[Any, fx.Node] = {}
    for node in graph.graph.nodes:
        if owner.get(node, ("",))[0] == "op":
            last[owner[node]] = node
    for key, node in last.items():
        unit = units[index[key]]
        members = [n for n in graph.graph.nodes if owner.get(n) == key]
        if any(_op_name(n) in NOISE for n in members):
            unit.name = "sample"
            unit.parts = [f"z = {_expression(node, owner, units, index, key)}", "ε ~ N(0, I)"]
        else:
            unit.name = _WORDS.get(_op_name(node), _op_name(node))
            if unit.name == "concatenate" and _argument(node, 1, "dim") == 1:
                unit.parts = ["channels"]


def _op_name(node: fx.Node) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _argument(node: fx.Node, position: int, name: str) -> Any:
    return node.args[position] if len(node.args) > position else node.kwargs.get(name)


def _expression(node: Any, owner: dict[Any, Any], units: list[Unit], index: dict[Any, int],
                key: Any) -> str:
    """A node of an operation unit as a formula over the units it reads (ε for drawn noise)."""
    if not isinstance(node, fx.Node):
        return f"{node:g}" if isinstance(node, float) else str(node)
    if owner.get(node) != key:
        return units[index[owner[node]]].name
    if _op_name(node) in NOISE:
        return "ε"
    args = [_expression(arg, owner, units, index, key) for arg in node.args]
    if node.target in _INFIX and len(args) == 2:
        wrap = node.target in (operator.mul, operator.truediv)
        args = [f"({a})" if wrap and (" + " in a or " - " in a) else a for a in args]
        return f" {_INFIX[node.target]} ".join(args)
    return f"{_op_name(node)}({', '.join(args)})"


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
