"""Checks that any architecture plugin — ours or a third party's — should pass, for use in tests.

``check_architectures`` trains each case for a couple of steps under every backend, or those its
``backends`` names (one process per backend for all its cases), then in one TensorFlow process
reloads every saved model, compares its outputs with the training backend's, and exports float32 and
int8 TFLite through the ``tflite`` exporter, running both on the LiteRT runtime. Export goes through
that TensorFlow reload whichever backend trained the model, so by default each case is exported
once, from one backend's run taken in turn (``export_all=True`` exports every run). It returns a
result per (architecture, backend) rather than stopping at the first failure; ``check_architecture``
asserts on one case::

    from core.testing import check_architecture

    def test_my_arch():
        check_architecture("my_arch", "digits", hparams={"units": 8}, plugins=["my_plugin"])
"""

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.backend import BACKENDS, resolve
from core.files import StrPath
from core.proc.child import call_in_backend
from core.task import task_named

Results = dict[tuple[str, str], dict[str, Any]]
"""``{(case key, backend): result}``: what ``check_architectures`` returns."""


@dataclass
class Case:
    """One architecture on one dataset, with small settings."""

    arch: str
    data: str
    hparams: dict[str, Any] = field(default_factory=dict)
    data_options: dict[str, Any] = field(default_factory=dict)
    steps: int = 2
    batch_size: int = 16
    backends: tuple[str, ...] | None = None
    """The backends to train it under; None: every one ``check_architectures`` is given."""

    @property
    def key(self) -> str:
        """A name for the case that is also a safe folder name: ``cnn-digits-filters4-dense8``."""
        parts = [self.arch, self.data, *(f"{k}{v}" for k, v in {**self.hparams, **self.data_options}.items())]
        return "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", p).strip("_") for p in parts)


def check_architectures(
    cases: Iterable[Case | Mapping[str, Any]],
    workdir: StrPath,
    *,
    backends: Sequence[str] = BACKENDS,
    plugins: Iterable[str] = (),
    export: Sequence[str] = ("none", "int8"),
    tolerance: float = 1e-5,
    export_all: bool = False,
) -> Results:
    """Results ``{(case.key, backend): {...}}`` for each case under each backend (see module doc).

    A result has ``exported`` (bool) and, where true, a ``tflite_<quantize>`` row per export."""
    workdir = Path(workdir)
    cases = [c if isinstance(c, Case) else Case(**c) for c in cases]
    payload = [asdict(c) | {"key": c.key} for c in cases]
    results = {}
    for backend in backends:
        resolve(backend)
        mine = [p for p, c in zip(payload, cases) if c.backends is None or backend in c.backends]
        if not mine:
            continue
        done = call_in_backend(
            backend,
            _train_cases,
            dict(cases=mine, workdir=str(workdir / backend), plugins=list(plugins)),
        )
        for key, result in done.items():
            results[(key, backend)] = result

    def exporter(i, case):  # the backends take turns, among those the case trains under
        turn = backends[i % len(backends)]
        return turn if case.backends is None or turn in case.backends else case.backends[0]

    exporting = {
        (c.key, b)
        for i, c in enumerate(cases)
        for b in backends
        if (c.key, b) in results and (export_all or b == exporter(i, c))
    }
    for key, result in results.items():
        result["exported"] = key in exporting and "run" in result
    dirs = {f"{key}|{backend}": r["run"] for (key, backend), r in results.items() if "run" in r}
    checked = call_in_backend(
        "tensorflow",
        _reload_and_export,
        dict(dirs=dirs, export=list(export), tolerance=tolerance, exporting=[f"{k}|{b}" for k, b in exporting]),
    )
    for name, result in checked.items():
        key, backend = name.split("|")
        results[(key, backend)].update(result)
    return results


def check_architecture(
    arch: str,
    data: str,
    *,
    hparams: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    backends: Sequence[str] = BACKENDS,
    plugins: Iterable[str] = (),
    workdir: StrPath | None = None,
    export: Sequence[str] = ("none", "int8"),
    tolerance: float = 1e-5,
    export_all: bool = False,
) -> Results:
    """Assert that ``arch`` trains under every backend, reloads in TensorFlow, and exports (see
    ``check_architectures``, whose results it returns); the failure message lists every error."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kerastack-check-") as tmp:
        case = Case(arch, data, dict(hparams or {}), dict(data_options or {}))
        results = check_architectures(
            [case],
            workdir or tmp,
            backends=backends,
            plugins=plugins,
            export=export,
            tolerance=tolerance,
            export_all=export_all,
        )
    failures = {f"{k[0]} on {k[1]}": r.get("errors") for k, r in results.items() if r.get("errors")}
    assert not failures, json.dumps(failures, indent=2)
    return results


def _train_cases(cases: list[dict[str, Any]], workdir: str, plugins: list[str]) -> dict[str, Any]:
    """In a backend's process: train each case briefly; save inputs and outputs of its model."""
    import keras

    from core.deploy.compare import sample_inputs
    from core.deploy.export import load_dataset
    from core.engine.training import train
    from core.errors import KerastackError
    from core.plugins import get_plugin_host
    from core.runs import inference_model

    out = {}
    for case in cases:
        run_dir = Path(workdir) / case["key"]
        result = {"backend": keras.backend.backend(), "errors": []}
        try:
            run = train(
                case["arch"],
                case["data"],
                epochs=1,
                batch_size=case["batch_size"],
                steps_per_epoch=case["steps"],
                hparams=case["hparams"],
                data_options=case["data_options"],
                out=run_dir,
                seed=0,
                plugins=plugins,
                verbose=0,
            )
        except KerastackError as exc:
            result["errors"].append(f"train: {exc}")
            out[case["key"]] = result
            continue
        losses = [v for k, v in run.metrics.items() if k.endswith("loss")]
        result.update(run=str(run.path), losses=losses, params=int(run.model.count_params()))
        if not losses or not all(np.isfinite(losses)):
            result["errors"].append(f"train: loss not finite: {losses}")
        model = inference_model(run.model)
        x = sample_inputs(model, load_dataset(run, get_plugin_host(plugins)), 16)
        np.save(run_dir / "check_inputs.npy", x)
        np.save(run_dir / "check_outputs.npy", np.asarray(model.predict(x, verbose=0), dtype="float32"))
        out[case["key"]] = result
    return out


def _reload_and_export(
    dirs: dict[str, str], export: list[str], tolerance: float, exporting: list[str]
) -> dict[str, Any]:
    """In a TensorFlow process: reload each run and compare outputs; export the runs named in
    ``exporting`` and run them on LiteRT."""
    from core.deploy.export import export as run_export
    from core.errors import KerastackError
    from core.runs import inference_model, load_run
    from tflite.runner import TFLiteModel

    out = {}
    for name, run_dir in dirs.items():
        run_dir = Path(run_dir)
        result = {"errors": []}
        out[name] = result
        try:
            run = load_run(run_dir)
            model = inference_model(run.model)
        except KerastackError as exc:
            result["errors"].append(f"reload: {exc}")
            continue
        x = np.load(run_dir / "check_inputs.npy")
        expected = np.load(run_dir / "check_outputs.npy")
        got = np.asarray(model.predict(x, verbose=0), dtype="float32")
        result["reload_diff"] = float(np.max(np.abs(got - expected)))
        if not result["reload_diff"] <= tolerance:
            result["errors"].append(f"reload: outputs differ by {result['reload_diff']:.2e} > {tolerance}")
        if name not in exporting:
            continue
        options = {"quantize": ",".join(export)}
        if "int8" in export:
            options["calibration_samples"] = 32  # enough to check conversion; fast
        try:
            paths = run_export(run_dir, "tflite", options)
        except KerastackError as exc:
            result["errors"].append(f"export {options['quantize']}: {exc}")
            continue
        # What the files return for Keras's outputs (a detector's: the boxes its graph selects).
        task = task_named(run.record.get("spec", {}).get("task") or "", optional=True)
        got = np.asarray(task.deployed(got), dtype="float32") if task is not None else got
        for quantize, path in zip(export, paths):
            lite = TFLiteModel(path)
            lite_out = lite.predict(x).reshape(got.shape)
            ops = sorted(set(lite.op_names()))
            row = {
                "size_bytes": lite.size_bytes,
                "ops": ops,
                "file": path.name,
                "dtypes": sorted({t["dtype"] for t in lite.tensor_dtypes()}),
                "max_abs_diff": float(np.max(np.abs(lite_out - got))),
                "mean_abs_diff": float(np.mean(np.abs(lite_out - got))),
            }
            if got.ndim == 2 and got.shape[1] > 1:
                row["agreement"] = float(np.mean(lite_out.argmax(-1) == got.argmax(-1)))
            result[f"tflite_{quantize}"] = row
            if [op for op in ops if op.startswith("Flex")]:
                result["errors"].append(f"export {quantize}: non-builtin ops {ops}")
            if quantize == "none" and not row["max_abs_diff"] <= 1e-4:
                result["errors"].append(f"export none: tflite differs by {row['max_abs_diff']:.2e}")
            if quantize == "int8" and "int8" not in row["dtypes"]:
                result["errors"].append(f"export int8: no int8 tensor in {row['dtypes']}")
            if not np.all(np.isfinite(lite_out)):
                result["errors"].append(f"export {quantize}: non-finite outputs")
    return out
