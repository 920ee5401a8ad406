"""The operators a .tflite file uses, with the version of each, as its flatbuffer's operator codes
say: the runtime must have a kernel for each (builtin op, version) pair to load the file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["op_versions"]


def op_versions(model: str | Path | bytes) -> dict[str, list[int]]:
    """``{op name: [versions]}`` of the operator codes the file's operators use (every subgraph),
    read with the TFLite schema's own Python code (``ai_edge_litert.schema_py_generated``). Custom
    ops are named by their custom code."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(model if isinstance(model, (bytes, bytearray)) else Path(model).read_bytes())
    root = schema.Model.GetRootAs(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    used = set()
    for s in range(root.SubgraphsLength()):
        graph = root.Subgraphs(s)
        used.update(graph.Operators(i).OpcodeIndex() for i in range(graph.OperatorsLength()))
    found: dict[str, set[int]] = {}
    for index in used:
        code = root.OperatorCodes(index)
        # Codes past 127 live in builtin_code; the deprecated int8 field holds at most 127.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, str(builtin))
        if builtin == schema.BuiltinOperator.CUSTOM and code.CustomCode():
            name = code.CustomCode().decode("utf-8", errors="replace")
        found.setdefault(name, set()).add(int(code.Version()))
    return {name: sorted(v) for name, v in sorted(found.items())}
