"""Bad input of every kind: one line naming the culprit, exit 2 (usage) or 1 (failure), no
traceback, and nothing half-written.

One table, one row per case. The rows run in one TensorFlow process (``MATRIX_JOB``) that calls
the real entry points (``core.cli.main``, ``tflite.__main__.main``) in turn, after training and
exporting a tiny run to damage. Around every row it takes a listing of the whole work folder
(names, sizes, modification times): a failing command must leave it exactly as it was, so a failed
``train`` leaves no ``--out`` folder and a failed ``export`` no ``export/NAME`` folder.

Plugin faults come from ``acme``, installed as a real distribution (``acme-kerastack 0.2``, an
entry point on ``PYTHONPATH``), so that errors can be checked for the package and version.
"""

import json
import os
import textwrap

import pytest
from conftest import run_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ACME = """
    import numpy as np
    from core import Dataset, hookimpl

    @hookimpl
    def register_architectures(register):
        register("boom_net", boom, summary="build() raises")
        register("not_a_model", not_a_model, summary="build() returns a string")

    def boom(spec, units=4):
        raise RuntimeError("build exploded")

    def not_a_model(spec):
        return "a string"

    @hookimpl
    def register_datasets(register):
        register("bad_data", bad_data, summary="64 samples, damaged on request")

    def bad_data(fault="none"):
        rng = np.random.default_rng(0)
        x, y = rng.random((64, 4)).astype("float32"), (np.arange(64) % 2).astype("int32")
        if fault == "nan":
            x[3, 1] = np.nan
        elif fault == "inf":
            x[5, 0] = -np.inf
        elif fault == "length":
            y = y[:61]
        elif fault == "labels":
            y[7] = 5
        elif fault == "dtype":
            x = np.full((64, 4), "a")
        elif fault == "empty":
            return Dataset(train=(x, y), validation=(x[:0], y[:0]), class_names=("a", "b"))
        elif fault == "load":
            raise OSError("disk on fire")
        return Dataset(train=(x, y), validation=(x, y), test=(x, y), class_names=("a", "b"))

    @hookimpl
    def register_exporters(register):
        register("boom_export", boom_export, summary="export() raises")

    def boom_export(ctx):
        (ctx.out_dir / "partial.bin").write_bytes(b"half")
        raise RuntimeError("export exploded")

    @hookimpl
    def register_callbacks(register):
        register("boom_cb", boom_cb, summary="the factory raises")

    def boom_cb():
        raise RuntimeError("callback exploded")

    @hookimpl
    def register_commands(cli):
        import click

        @cli.command("acme-boom")
        def acme_boom():
            raise RuntimeError("command exploded")
"""

TWICE = """
    from core import hookimpl

    @hookimpl
    def register_architectures(register):
        register("twice_net", lambda spec: None)
        register("twice_net", lambda spec: None)
"""

CRASHY = "raise RuntimeError('cannot start')\n"

ACME_LABEL = "plugin 'acme' (acme-kerastack 0.2)"
TRAIN = ["train", "--arch", "mlp", "--data", "digits"]


def out(row_id):
    return ["--out", "{root}/out/" + row_id]


# (id, tool, argv, exit code, substrings of the one error line). {root}, {run}, {bad}, {tfl} and
# {plugins} are filled in by the job. Train rows write to {root}/out/ID, which must not exist after.
ROWS = [
    # -- names ---------------------------------------------------------------------------------------
    (
        "unknown-architecture",
        "kerastack",
        ["train", "--arch", "mpl", "--data", "digits"],
        2,
        ["unknown architecture 'mpl' (did you mean 'mlp'?); valid: "],
    ),
    (
        "unknown-dataset",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "digts"],
        2,
        ["unknown dataset 'digts' (did you mean 'digits'?)"],
    ),
    (
        "unknown-exporter",
        "kerastack",
        ["export", "{run}", "--to", "tflight"],
        2,
        ["unknown exporter 'tflight' (did you mean 'tflite'?)"],
    ),
    (
        "unknown-callback",
        "kerastack",
        TRAIN + ["--callback", "boom_cbb"],
        2,
        ["unknown callback 'boom_cbb' (did you mean 'boom_cb'?)"],
    ),
    (
        "unknown-backend",
        "kerastack",
        TRAIN + ["--backend", "jaxx"],
        2,
        ["unknown backend 'jaxx'; valid: jax, tensorflow, torch"],
    ),
    ("unknown-command", "kerastack", ["trian"], 2, ["No such command 'trian'"]),
    (
        "task-not-supported",
        "kerastack",
        ["train", "--arch", "cnn", "--data", "diabetes", *out("task")],
        2,
        ["architecture 'cnn' supports classification; dataset 'diabetes' is regression"],
    ),
    # -- values --------------------------------------------------------------------------------------
    (
        "hp-unknown-key",
        "kerastack",
        TRAIN + ["--hp", "unitz=8"],
        2,
        ["architecture 'mlp' has no hyperparameter 'unitz' (did you mean 'units'?); valid: batch_norm, dropout, units"],
    ),
    (
        "hp-wrong-type",
        "kerastack",
        TRAIN + ["--hp", "dropout=lots"],
        2,
        ["architecture 'mlp': hyperparameter dropout='lots': expected a number"],
    ),
    (
        "hp-wrong-list-type",
        "kerastack",
        TRAIN + ["--hp", "units=8,many"],
        2,
        ["hyperparameter units='8,many': expected an integer"],
    ),
    ("hp-malformed", "kerastack", TRAIN + ["--hp", "units"], 2, ["--hp 'units': expected NAME=VALUE"]),
    ("hp-empty-name", "kerastack", TRAIN + ["--hp", "=8"], 2, ["--hp '=8': expected NAME=VALUE"]),
    (
        "data-opt-unknown-key",
        "kerastack",
        TRAIN + ["--data-opt", "seeed=1"],
        2,
        ["dataset 'digits' has no option 'seeed' (did you mean 'seed'?); valid: seed, test, validation"],
    ),
    (
        "data-opt-wrong-type",
        "kerastack",
        TRAIN + ["--data-opt", "seed=abc"],
        2,
        ["dataset 'digits': option seed='abc': expected an integer"],
    ),
    (
        "data-opt-malformed",
        "kerastack",
        TRAIN + ["--data-opt", "seed:1"],
        2,
        ["--data-opt 'seed:1': expected NAME=VALUE"],
    ),
    (
        "data-opt-fractions",
        "kerastack",
        TRAIN + ["--data-opt", "validation=2", *out("fractions")],
        2,
        [
            "dataset 'digits': options validation and test must be fractions in [0, 1) summing below 1 "
            "(0: no such split), got validation=2.0"
        ],
    ),
    (
        "data-opt-fractions-negative",
        "kerastack",
        TRAIN + ["--data-opt", "validation=-0.1", *out("negative")],
        2,
        ["dataset 'digits': options validation and test must be fractions in [0, 1)", "got validation=-0.1"],
    ),
    (
        "data-opt-fractions-sum",
        "kerastack",
        TRAIN + ["--data-opt", "validation=0.5", "--data-opt", "test=0.5", *out("sum")],
        2,
        ["summing below 1 (0: no such split), got validation=0.5, test=0.5"],
    ),
    (
        "data-opt-range-shapes",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "shapes", "--data-opt", "size=4", *out("size")],
        2,
        ["dataset 'shapes': option size=4: expected an integer in [8, 256]"],
    ),
    (
        "data-opt-range-waves",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "waves", "--data-opt", "noise=-1", *out("noise")],
        2,
        ["dataset 'waves': option noise=-1.0: expected a number in [0, 10]"],
    ),
    (
        "data-opt-range-tokens",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "tokens", "--data-opt", "samples=5", *out("samples")],
        2,
        ["dataset 'tokens': option samples=5: expected an integer at least 14"],
    ),
    (
        "data-opt-range-tabular",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "iris", "--data-opt", "test=1.5", *out("iris")],
        2,
        ["dataset 'iris': options validation and test must be fractions in [0, 1) summing below 1"],
    ),
    (
        "opt-unknown-key",
        "kerastack",
        ["export", "{run}", "--to", "tflite", "--opt", "quantise=int8"],
        2,
        ["exporter 'tflite' has no option 'quantise' (did you mean 'quantize'?)"],
    ),
    (
        "opt-wrong-type",
        "kerastack",
        ["export", "{run}", "--to", "tflite", "--opt", "allow_select_ops=maybe"],
        2,
        ["exporter 'tflite': option allow_select_ops='maybe': expected true or false"],
    ),
    (
        "opt-bad-value",
        "kerastack",
        ["export", "{run}", "--to", "tflite", "--opt", "quantize=int4"],
        2,
        ["exporter 'tflite'", "int4"],
    ),
    (
        "opt-malformed",
        "kerastack",
        ["export", "{run}", "--to", "tflite", "--opt", "quantize"],
        2,
        ["--opt 'quantize': expected NAME=VALUE"],
    ),
    ("epochs-negative", "kerastack", TRAIN + ["--epochs", "-1"], 2, ["--epochs must be at least 1, got -1"]),
    ("epochs-not-integer", "kerastack", TRAIN + ["--epochs", "ten"], 2, ["'ten' is not a valid integer"]),
    ("batch-size-zero", "kerastack", TRAIN + ["--batch-size", "0"], 2, ["--batch-size must be at least 1, got 0"]),
    (
        "learning-rate-negative",
        "kerastack",
        TRAIN + ["--learning-rate", "-0.1"],
        2,
        ["--learning-rate must be positive, got -0.1"],
    ),
    (
        "label-smoothing-range",
        "kerastack",
        TRAIN + ["--label-smoothing", "1.5"],
        2,
        ["--label-smoothing must lie in [0, 1), got 1.5"],
    ),
    (
        "optimizer-typo",
        "kerastack",
        TRAIN + ["--optimizer", "adamm"],
        2,
        ["--optimizer 'adamm' (did you mean 'adam'?); valid: adam, adamw, sgd"],
    ),
    ("lora-rank-zero", "kerastack", TRAIN + ["--lora-rank", "0"], 2, ["--lora-rank must be at least 1, got 0"]),
    (
        "monitor-typo",
        "kerastack",
        TRAIN + ["--monitor", "val_acc", *out("monitor")],
        2,
        [
            "--monitor 'val_acc' (did you mean 'val_accuracy'?); valid: accuracy, loss, val_accuracy, val_loss "
            "(what 'mlp' logs on 'digits')"
        ],
    ),
    (
        "monitor-typo-early-stopping",
        "kerastack",
        TRAIN + ["--monitor", "val_acc", "--early-stopping", "1", *out("monitor_stopping")],
        2,
        ["--monitor 'val_acc' (did you mean 'val_accuracy'?); valid: accuracy, loss, val_accuracy, val_loss"],
    ),
    (
        "monitor-typo-own-train-step",
        "kerastack",
        ["train", "--arch", "gan", "--data", "digits", "--hp", "latent=8", "--hp", "filters=8"]
        + ["--monitor", "val_d_los", *out("monitor_gan")],
        2,
        ["--monitor 'val_d_los' (did you mean 'val_d_loss'?); valid: d_loss, g_loss, val_d_loss, val_g_loss"],
    ),
    (
        "conflict-resume-and-settings",
        "kerastack",
        ["train", "--resume", "{run}", "--arch", "cnn", "--epochs", "3"],
        2,
        ["--resume continues a run with the settings in its run.json; it takes no --arch, --epochs"],
    ),
    (
        "conflict-distribute-backend",
        "kerastack",
        TRAIN + ["--distribute", "model", "--backend", "tensorflow"],
        2,
        ["--distribute model needs the jax backend"],
    ),
    (
        "conflict-augment-streaming",
        "kerastack",
        [
            "train",
            "--arch",
            "mlp",
            "--data",
            "image_folder",
            "--data-opt",
            "path={bad}/images",
            "--augment",
            "flip",
            *out("augment"),
        ],
        2,
        ["--augment works on datasets of arrays; dataset 'image_folder' streams batches"],
    ),
    (
        "config-unknown-key",
        "kerastack",
        ["train", "--config", "{bad}/typo.toml"],
        2,
        ["typo.toml: unknown key training.'epoch' (did you mean 'epochs'?)"],
    ),
    ("config-missing", "kerastack", ["train", "--config", "{bad}/missing.toml"], 2, ["missing.toml: cannot read"]),
    # -- data ----------------------------------------------------------------------------------------
    (
        "data-length-mismatch",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=length", *out("length")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL, "train split has 64 inputs but 61 targets"],
    ),
    (
        "data-nan",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=nan", *out("nan")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL, "train split inputs contain NaN or inf"],
    ),
    (
        "data-inf",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=inf", *out("inf")],
        1,
        ["train split inputs contain NaN or inf"],
    ),
    (
        "data-labels-out-of-range",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=labels", *out("labels")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL + ": train labels must lie in [0, 1] (2 classes); found 0..5"],
    ),
    (
        "data-empty-split",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=empty", *out("empty")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL, "the validation split is empty"],
    ),
    (
        "data-wrong-dtype",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=dtype", *out("dtype")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL, "train split inputs have dtype <U1; expected numbers"],
    ),
    (
        "data-shape-architecture-cannot-take",
        "kerastack",
        ["train", "--arch", "cnn", "--data", "iris", "--epochs", "1", *out("shape")],
        1,
        ["architecture 'cnn'", "failed in build()", "dataset 'iris': input shape (4,)"],
    ),
    # -- files ---------------------------------------------------------------------------------------
    (
        "run-dir-missing",
        "kerastack",
        ["export", "{bad}/nowhere", "--to", "tflite"],
        1,
        ["nowhere: no such run directory"],
    ),
    (
        "run-dir-without-model",
        "kerastack",
        ["export", "{bad}/no_model", "--to", "tflite"],
        1,
        ["no_model/model.keras: no such model file"],
    ),
    (
        "run-dir-without-record",
        "kerastack",
        ["export", "{bad}/no_record", "--to", "tflite"],
        1,
        ["no_record/run.json: no such run record"],
    ),
    (
        "run-record-torn",
        "kerastack",
        ["export", "{bad}/torn_record", "--to", "tflite"],
        1,
        ["torn_record/run.json: unreadable run record"],
    ),
    (
        "keras-corrupt",
        "kerastack",
        ["export", "{bad}/corrupt_keras", "--to", "tflite"],
        1,
        ["corrupt_keras/model.keras: not a valid .keras model file (a zip archive): truncated or corrupt"],
    ),
    (
        "keras-truncated",
        "kerastack",
        ["export", "{bad}/truncated_keras", "--to", "tflite"],
        1,
        ["truncated_keras/model.keras: not a valid .keras model file"],
    ),
    (
        "keras-unreadable",
        "kerastack",
        ["export", "{bad}/folder_keras", "--to", "tflite"],
        1,
        ["folder_keras/model.keras: is a folder, expected a .keras model file"],
    ),
    (
        "verify-tflite-missing",
        "kerastack",
        ["verify", "{bad}/missing.tflite", "--run", "{run}"],
        1,
        ["missing.tflite: no such file"],
    ),
    (
        "verify-tflite-corrupt",
        "kerastack",
        ["verify", "{bad}/corrupt.tflite", "--run", "{run}"],
        1,
        ["corrupt.tflite: not a valid .tflite model"],
    ),
    (
        "verify-tflite-truncated",
        "kerastack",
        ["verify", "{bad}/truncated.tflite", "--run", "{run}"],
        1,
        ["truncated.tflite: not a valid .tflite model"],
    ),
    (
        "verify-tflite-empty",
        "kerastack",
        ["verify", "{bad}/empty.tflite", "--run", "{run}"],
        1,
        ["empty.tflite: not a valid .tflite model"],
    ),
    (
        "verify-tflite-unreadable",
        "kerastack",
        ["verify", "{bad}/folder.tflite", "--run", "{run}"],
        2,
        ["folder.tflite' is a directory"],
    ),
    (
        "verify-tflite-wrong-input-shape",
        "kerastack",
        ["verify", "{bad}/other_shape.tflite", "--run", "{run}"],
        1,
        [
            "other_shape.tflite: model expects input of shape (batch, 5), received (",
            ", 8, 8, 1)",
            "the test split of run",
        ],
    ),
    (
        "verify-run-missing",
        "kerastack",
        ["verify", "{tfl}", "--run", "{bad}/nowhere"],
        1,
        ["nowhere: no such run directory"],
    ),
    (
        "tflite-missing",
        "tflite",
        ["{bad}/missing.tflite", "--bench", "3"],
        1,
        ["tflite: error: ", "missing.tflite: no such file"],
    ),
    (
        "tflite-corrupt",
        "tflite",
        ["{bad}/corrupt.tflite", "--bench", "3"],
        1,
        ["corrupt.tflite: not a valid .tflite model"],
    ),
    (
        "tflite-truncated",
        "tflite",
        ["{bad}/truncated.tflite", "--bench", "3"],
        1,
        ["truncated.tflite: not a valid .tflite model"],
    ),
    (
        "tflite-wrong-input-shape",
        "tflite",
        ["{tfl}", "--input", "{bad}/wrong_shape.npy"],
        1,
        ["model expects input of shape (batch, 8, 8, 1), received (3, 5)"],
    ),
    (
        "tflite-corrupt-npy",
        "tflite",
        ["{tfl}", "--input", "{bad}/corrupt.npy"],
        1,
        ["corrupt.npy: not a .npy array file"],
    ),
    ("tflite-no-action", "tflite", ["{tfl}"], 2, ["give --input FILE.npy, --bench N, --metadata"]),
    # -- plugins -------------------------------------------------------------------------------------
    (
        "plugin-build-raises",
        "kerastack",
        ["train", "--arch", "boom_net", "--data", "digits", *out("build")],
        1,
        [
            "architecture 'boom_net' from " + ACME_LABEL + " failed in boom(): RuntimeError: build exploded",
            "dataset 'digits': input shape (8, 8, 1)",
        ],
    ),
    (
        "plugin-build-not-a-model",
        "kerastack",
        ["train", "--arch", "not_a_model", "--data", "digits", *out("not_model")],
        1,
        ["architecture 'not_a_model' from " + ACME_LABEL + ": build() returned str, expected a keras.Model"],
    ),
    (
        "plugin-load-raises",
        "kerastack",
        ["train", "--arch", "mlp", "--data", "bad_data", "--data-opt", "fault=load", *out("load")],
        1,
        ["dataset 'bad_data' from " + ACME_LABEL + " failed in bad_data(): OSError: disk on fire"],
    ),
    (
        "plugin-export-raises",
        "kerastack",
        ["export", "{run}", "--to", "boom_export"],
        1,
        ["exporter 'boom_export' from " + ACME_LABEL + " failed in boom_export(): RuntimeError: export exploded"],
    ),
    (
        "plugin-callback-raises",
        "kerastack",
        TRAIN + ["--callback", "boom_cb", *out("callback")],
        1,
        ["callback 'boom_cb' from " + ACME_LABEL + " failed in boom_cb(): RuntimeError: callback exploded"],
    ),
    (
        "plugin-command-raises",
        "kerastack",
        ["acme-boom"],
        1,
        ["command 'acme-boom' from " + ACME_LABEL + " failed: RuntimeError: command exploded"],
    ),
    (
        "plugin-loaded-twice",
        "kerastack",
        ["--plugin", "acme_kerastack_plugin", "train", "--arch", "boom_net", "--data", "digits", *out("twice_loaded")],
        1,
        ["architecture 'boom_net' from " + ACME_LABEL + " failed in boom()"],
    ),
    (
        "plugin-registers-twice",
        "kerastack",
        ["--plugin", "{plugins}/twice.py", "train", "--arch", "twice_net", "--data", "digits"],
        2,
        ["architecture 'twice_net' is registered 2 times by plugin 'twice'"],
    ),
    (
        "plugin-fails-at-import",
        "kerastack",
        ["--plugin", "{plugins}/crashy.py", "train", "--arch", "crashy_net", "--data", "digits"],
        2,
        ["unknown architecture 'crashy_net'", "broken plugins: plugin 'crashy'"],
    ),
]

# Warnings expected beside the error line (they must not count as a second error line).
WARNINGS = {
    "plugin-loaded-twice": "plugin 'acme_kerastack_plugin' (acme_kerastack_plugin) is broken: the same module is "
    "already loaded as " + ACME_LABEL,
    "plugin-fails-at-import": "plugin 'crashy'",
}

MATRIX_JOB = """
import contextlib, io, json, os, shutil, sys
from pathlib import Path
import numpy as np

root, rows = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
import core.proc.quiet
core.proc.quiet.filter_native_stderr = lambda: None  # stderr stays a Python stream we can capture
from core.cli import main
from tflite.__main__ import main as tflite_main

def call(tool, argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv) if tool == "kerastack" else tflite_main(argv)
        except SystemExit as exit:
            code = exit.code
    return (code if isinstance(code, int) else 1), out.getvalue(), err.getvalue()

def listing():
    return sorted((str(p.relative_to(root)), p.is_dir() or (p.stat().st_size, p.stat().st_mtime_ns))
                  for p in root.rglob("*"))

run, bad = root / "run", root / "bad"
os.chdir(root / "cwd")
code, o, e = call("kerastack", ["train", "--arch", "mlp", "--data", "digits", "--hp", "units=8", "--epochs", "1",
                                "--steps-per-epoch", "3", "--seed", "0", "--out", str(run), "--quiet"])
assert code == 0, e
code, o, e = call("kerastack", ["export", str(run), "--to", "tflite", "--no-report"])
assert code == 0, e
tfl = run / "export/tflite/model_float32.tflite"

# Damaged copies of the run and of its files.
bad.mkdir()
for name in ("no_model", "corrupt_keras", "truncated_keras", "folder_keras", "torn_record", "no_record"):
    shutil.copytree(run, bad / name, ignore=shutil.ignore_patterns("export"))
(bad / "no_model/model.keras").unlink()
(bad / "no_record/run.json").unlink()
(bad / "torn_record/run.json").write_text('{"status": "runn')
model = (run / "model.keras").read_bytes()
(bad / "corrupt_keras/model.keras").write_bytes(np.random.default_rng(0).bytes(len(model)))
(bad / "truncated_keras/model.keras").write_bytes(model[: len(model) // 2])
(bad / "folder_keras/model.keras").unlink()
(bad / "folder_keras/model.keras").mkdir()
lite = tfl.read_bytes()
(bad / "corrupt.tflite").write_bytes(np.random.default_rng(1).bytes(len(lite)))
(bad / "truncated.tflite").write_bytes(lite[: len(lite) // 2])
(bad / "empty.tflite").write_bytes(b"")
(bad / "folder.tflite").mkdir()
np.save(bad / "wrong_shape.npy", np.zeros((3, 5), "float32"))
(bad / "corrupt.npy").write_bytes(b"\\x93NUMPY garbage")
(bad / "typo.toml").write_text('arch = "mlp"\\ndata = "digits"\\n[training]\\nepoch = 3\\n')
for label in ("a", "b"):
    (bad / "images" / label).mkdir(parents=True)
    for i in range(8):
        from PIL import Image
        Image.fromarray(np.full((8, 8), 30 * i, "uint8")).save(bad / "images" / label / f"{i}.png")
import keras
other = keras.Sequential([keras.Input((5,)), keras.layers.Dense(10, activation="softmax")])
with contextlib.redirect_stdout(io.StringIO()):
    other.export(str(bad / "other_shape.tflite"), format="litert")

places = {"root": str(root), "run": str(run), "bad": str(bad), "tfl": str(tfl), "plugins": str(root / "plugins")}
results = {}
for row_id, tool, argv, _, _ in rows:
    before = listing()
    code, o, e = call(tool, [a.format(**places) for a in argv])
    results[row_id] = {"code": code, "stdout": o, "stderr": e, "changed": sorted(set(before) ^ set(listing()))}
(root / "results.json").write_text(json.dumps(results))
"""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    """Every row's exit code, output and changes to the work folder, from one process."""
    root = tmp_path_factory.mktemp("bad-input")
    site = root / "site"
    (site / "acme_kerastack-0.2.dist-info").mkdir(parents=True)
    (site / "acme_kerastack_plugin.py").write_text(textwrap.dedent(ACME))
    (site / "acme_kerastack-0.2.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-kerastack\nVersion: 0.2\n"
    )
    (site / "acme_kerastack-0.2.dist-info/entry_points.txt").write_text("[kerastack]\nacme = acme_kerastack_plugin\n")
    (root / "plugins").mkdir()
    (root / "plugins/twice.py").write_text(textwrap.dedent(TWICE))
    (root / "plugins/crashy.py").write_text(CRASHY)
    (root / "cwd").mkdir()
    (root / "rows.json").write_text(json.dumps(ROWS))
    env = {
        "KERAS_BACKEND": "tensorflow",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env.pop("KERASTACK_PLUGINS", None)
    run_python(MATRIX_JOB, root, root / "rows.json", env=env)
    return json.loads((root / "results.json").read_text())


def test_the_matrix_covers_every_kind_of_bad_input():
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    for prefix in (
        "unknown-",
        "hp-",
        "data-opt-",
        "opt-",
        "conflict-",
        "data-",
        "keras-",
        "run-",
        "verify-tflite-",
        "tflite-",
        "plugin-",
    ):
        assert any(i.startswith(prefix) for i in ids), prefix


@pytest.mark.slow
@pytest.mark.parametrize("row_id, tool, argv, code, expected", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input(matrix, row_id, tool, argv, code, expected):
    result = matrix[row_id]
    stderr = result["stderr"]
    assert result["code"] == code, (result["code"], stderr)
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "warning:" not in line]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(
        (
            "kerastack: error: ",
            "kerastack train: error: ",
            "kerastack export: error: ",
            "kerastack verify: error: ",
            "kerastack: error: ",
            "tflite: error: ",
        )
    ), line
    for text in expected:
        assert text in line, (text, line)
    if tool == "kerastack" and argv[0] == "verify" and "tflite" in argv[1]:
        name = argv[1].rsplit("/", 1)[-1]
        assert line.count(name) == 1, line  # the culprit named once, not twice
    if row_id in WARNINGS:
        assert WARNINGS[row_id] in stderr, stderr
    # Nothing half-written: no --out folder, no export folder, no file changed anywhere.
    assert result["changed"] == [], result["changed"]


# -- fuzzing: option text and config files reach the core only as usage errors --------------------


class _Reached(BaseException):
    """Raised instead of training: everything up to here accepted the input."""


@pytest.fixture
def cli_in_process(monkeypatch):
    """``call(argv)`` → exit code of ``core.cli.main`` run here, stopping before any training."""
    import core.engine.training
    import core.proc.quiet
    from core.cli import main

    monkeypatch.setattr(core.proc.quiet, "filter_native_stderr", lambda: None)

    def reached(*args, **kwargs):
        raise _Reached()

    monkeypatch.setattr(core.engine.training, "_dispatch", reached)

    def call(argv):
        try:
            main(argv)
        except SystemExit as exit:
            return exit.code
        except _Reached:
            return "reached"
        return 0

    return call


FLAGS = [
    "--epochs",
    "--batch-size",
    "--steps-per-epoch",
    "--optimizer",
    "--learning-rate",
    "--weight-decay",
    "--warmup",
    "--clip-norm",
    "--label-smoothing",
    "--early-stopping",
    "--augment",
    "--precision",
    "--jit",
    "--checkpoint-every",
    "--distribute",
    "--processes",
    "--seed",
    "--lora-rank",
    "--freeze",
    "--hp",
    "--data-opt",
    "--callback",
    "--backend",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FLAGS), st.text(max_size=12)), max_size=4))
def test_fuzz_train_flags_only_give_usage_errors(cli_in_process, capsys, flags):
    argv = ["train", "--arch", "mlp", "--data", "digits", "--out", "/nonexistent/fuzz"]
    for flag, value in flags:
        argv += [flag, value]
    code = cli_in_process(argv)
    err = capsys.readouterr().err
    assert code in (2, "reached"), (argv, code, err)
    assert "Traceback" not in err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(
                [
                    "arch",
                    "data",
                    "seed",
                    "backend",
                    "training",
                    "hparams",
                    "data_options",
                    "callbacks",
                    "export",
                    "transfer",
                ]
            ),
            st.one_of(
                st.text(max_size=8),
                st.integers(),
                st.booleans(),
                st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
            ),
            max_size=5,
        ),
    )
)
def test_fuzz_config_files_through_the_cli_only_give_usage_errors(cli_in_process, capsys, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "run.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(
            "".join(f"{k} = {json.dumps(v) if not isinstance(v, dict) else _table(v)}\n" for k, v in content.items())
        )
    code = cli_in_process(["train", "--config", str(path), "--out", "/nonexistent/fuzz"])
    err = capsys.readouterr().err
    assert code in (2, "reached"), (path.read_bytes(), code, err)
    assert "Traceback" not in err


def _table(mapping):
    return "{ " + ", ".join(f"{json.dumps(k)} = {v}" for k, v in mapping.items()) + " }"
