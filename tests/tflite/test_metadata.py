"""tflite/metadata.py: named metadata inside real .tflite files (made by TensorFlow in one subprocess)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tflite import TFLiteModel, load_metadata
from tflite.metadata import EMBEDDED_KEY, embed_metadata, read_metadata

REPO = Path(__file__).resolve().parents[2]

# Runs in its own process: the test process (like a device) never imports TensorFlow.
MAKE_MODELS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    out = sys.argv[1]
    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.normal(0, 0.3, (64, 16)).astype("float32"))
    w2 = tf.constant(rng.normal(0, 0.5, (16, 10)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
    def net(x):
        h = tf.nn.relu(tf.matmul(tf.reshape(x - 0.5, [-1, 64]), w1))
        return tf.nn.softmax(tf.matmul(h, w2))

    def convert(int8):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([net.get_concrete_function()])
        if int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([rng.random((1, 8, 8, 1), dtype=np.float32)]
                                                        for _ in range(100))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        return converter.convert()

    open(f"{out}/float32.tflite", "wb").write(convert(False))
    open(f"{out}/int8.tflite", "wb").write(convert(True))
    """
)

META = {
    "format": "kerastack-tflite/1",
    "task": "classification",
    "input_shape": [8, 8, 1],
    "class_names": [f"digit {i}" for i in range(10)],
    "files": {"model_int8.tflite": {"quantize": "int8", "io": "int8"}},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("metadata")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", MAKE_MODELS, str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture
def x():
    return np.random.default_rng(1).random((64, 8, 8, 1), dtype=np.float32)


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_embed_reads_back_and_keeps_the_model(models, tmp_path, x, variant):
    src, dst = models / f"{variant}.tflite", tmp_path / f"{variant}.tflite"
    before = read_metadata(src)
    assert set(before) == {"min_runtime_version", "CONVERSION_METADATA"}  # what the converter writes
    payload = json.dumps(META).encode("utf-8")

    embed_metadata(src, dst, EMBEDDED_KEY, payload)

    after = read_metadata(dst)
    assert after[EMBEDDED_KEY] == payload
    assert {k: after[k] for k in before} == before
    original, embedded = TFLiteModel(src), TFLiteModel(dst)
    assert embedded.op_names() == original.op_names()
    assert embedded.tensor_dtypes() == original.tensor_dtypes()
    np.testing.assert_array_equal(embedded.predict(x), original.predict(x))
    assert 0 < dst.stat().st_size - src.stat().st_size < len(payload) + 256


def test_embedding_again_replaces_the_entry(models, tmp_path, x):
    path = tmp_path / "model.tflite"
    embed_metadata(models / "float32.tflite", path, EMBEDDED_KEY, b"x" * 1000)
    size = path.stat().st_size
    embed_metadata(path, path, EMBEDDED_KEY, b'{"v": 2}')  # in place
    embed_metadata(path, path, "other", b"\x00\x01\xff")
    meta = read_metadata(path)
    assert meta[EMBEDDED_KEY] == b'{"v": 2}' and meta["other"] == b"\x00\x01\xff"
    assert path.stat().st_size < size  # the old buffer was reused, not left behind
    np.testing.assert_array_equal(TFLiteModel(path).predict(x), TFLiteModel(models / "float32.tflite").predict(x))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_associated_files_survive_embedding_again(models, tmp_path, x):
    """The standard metadata's files (a zip after the flatbuffer) stay when another entry is written."""
    from tflite.metadata import associated_files

    path = tmp_path / "model.tflite"
    embed_metadata(models / "float32.tflite", path, "TFLITE_METADATA", b"M", {"labels.txt": b"a\nb\n"})
    embed_metadata(path, path, EMBEDDED_KEY, b'{"v": 1}')
    embed_metadata(path, path, "TFLITE_METADATA", b"N", {"vocab.txt": b"<PAD> 0\n"})
    assert associated_files(path) == {"labels.txt": b"a\nb\n", "vocab.txt": b"<PAD> 0\n"}
    assert read_metadata(path)["TFLITE_METADATA"] == b"N" and read_metadata(path)[EMBEDDED_KEY] == b'{"v": 1}'
    np.testing.assert_array_equal(TFLiteModel(path).predict(x), TFLiteModel(models / "float32.tflite").predict(x))
    assert associated_files(models / "float32.tflite") == {}


def test_weights_stay_16_byte_aligned(models, tmp_path):
    """The schema asks for ``force_align: 16`` on buffer data; the generated Python packer ignores it."""
    from ai_edge_litert import schema_py_generated as schema

    path = embed_metadata(models / "float32.tflite", tmp_path / "m.tflite", EMBEDDED_KEY, b"abc")
    data = bytearray(path.read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    starts = []
    for i in range(model.BuffersLength()):
        buffer = model.Buffers(i)
        if not buffer.DataIsNone() and buffer.DataLength():
            starts.append(buffer._tab.Vector(buffer._tab.Offset(4)))
    assert len(starts) >= 3 and all(s % 16 == 0 for s in starts), [s % 16 for s in starts]


def test_single_file_deployment(models, tmp_path, x):
    """No model.json beside the file: the runner and ``python -m tflite`` use the embedded copy."""
    path = tmp_path / "renamed.tflite"
    embed_metadata(models / "int8.tflite", path, EMBEDDED_KEY, json.dumps(META).encode())
    meta = load_metadata(path)
    assert meta["task"] == "classification" and meta["class_names"] == META["class_names"]
    assert meta["file"] == {"quantize": "int8", "io": "int8"}  # its only entry, under its old name
    model = TFLiteModel(path)
    assert model.labels == META["class_names"]

    np.save(tmp_path / "x.npy", x[:2])
    proc = _cli(path, "--input", tmp_path / "x.npy", "--top", "2", "--metadata", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["metadata"]["class_names"] == META["class_names"]
    assert result["predictions"][0]["top"][0]["label"].startswith("digit ")


def test_embedded_metadata_wins_over_another_exports_sidecars(models, tmp_path, x):
    """Two models in one folder: the other export's model.json and 3-line labels.txt must not be
    read for this file (they used to win: "3 labels but the model outputs 10 classes")."""
    path = tmp_path / "model_a.tflite"
    embed_metadata(models / "int8.tflite", path, EMBEDDED_KEY, json.dumps(META).encode())
    (tmp_path / "model.json").write_text(json.dumps({"task": "regression", "class_names": ["x", "y", "z"]}))
    (tmp_path / "labels.txt").write_text("x\ny\nz\n")
    meta = load_metadata(path)
    assert meta["task"] == "classification" and meta["class_names"] == META["class_names"]
    assert TFLiteModel(path).labels == META["class_names"]
    np.save(tmp_path / "x.npy", x[:2])
    proc = _cli(path, "--input", tmp_path / "x.npy", "--top", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predictions"][0]["top"][0]["label"].startswith("digit ")


def test_models_without_kerastack_metadata(models, tmp_path):
    assert load_metadata(models / "float32.tflite") is None
    assert TFLiteModel(models / "float32.tflite").labels is None
    bad = tmp_path / "bad.tflite"
    embed_metadata(models / "float32.tflite", bad, EMBEDDED_KEY, b"{not json")
    with pytest.raises(ValueError, match=r"bad.tflite \(embedded 'kerastack' metadata\): cannot read metadata"):
        load_metadata(bad)


@pytest.mark.parametrize("damage", ["garbage", "tiny", "truncated"])
def test_damaged_files_are_named(models, tmp_path, damage):
    path = tmp_path / "damaged.tflite"
    good = (models / "float32.tflite").read_bytes()
    path.write_bytes({"garbage": b"\xff" * 4096, "tiny": b"TFL", "truncated": good[:200]}[damage])
    with pytest.raises(ValueError, match="damaged.tflite: not a") as info:
        read_metadata(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="damaged.tflite"):
        embed_metadata(path, tmp_path / "out.tflite", EMBEDDED_KEY, b"{}")
    assert not (tmp_path / "out.tflite").exists()


def test_reader_imports_nothing_heavy(models):
    code = textwrap.dedent(
        f"""
        import sys
        from tflite import load_metadata
        from tflite.metadata import read_metadata
        read_metadata({str(models / "int8.tflite")!r})
        load_metadata({str(models / "int8.tflite")!r})
        heavy = [m for m in ("tensorflow", "keras", "flatbuffers", "ai_edge_litert", "core", "jax", "torch")
                 if m in sys.modules]
        print(heavy)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_core_writer_embeds_this_files_part_of_model_json(models, tmp_path):
    """``plugins.deployment.tflite.metadata``: the exporter's side, which keeps model.json's size in step."""
    from plugins.deployment.tflite.metadata import embed_run_metadata, read_run_metadata

    path = tmp_path / "model_int8.tflite"
    shutil.copy(models / "int8.tflite", path)
    meta = dict(
        META,
        files={
            "model_int8.tflite": {"quantize": "int8", "size_bytes": 1, "gzip_bytes": 1},
            "model_float32.tflite": {"quantize": "none", "size_bytes": 2},
        },
    )
    (tmp_path / "model.json").write_text(json.dumps(meta))
    embedded = embed_run_metadata(path)
    assert embedded["files"] == {"model_int8.tflite": {"quantize": "int8"}}
    assert embedded["class_names"] == META["class_names"]
    assert read_run_metadata(path) == embedded
    files = json.loads((tmp_path / "model.json").read_text())["files"]
    data = path.read_bytes()
    assert files["model_int8.tflite"]["size_bytes"] == len(data)
    assert files["model_int8.tflite"]["gzip_bytes"] == len(gzip.compress(data, 9, mtime=0))
    assert files["model_float32.tflite"]["size_bytes"] == 2  # other files untouched
    (tmp_path / "model.json").unlink()
    assert load_metadata(path)["class_names"] == META["class_names"]


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tflite", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )


# -- the input range and normalization the exporter records (issue 14) -----------------------------
RANGE = {"min": 0.0, "max": 1.0, "samples": 1257}
PIXELS = {"scale": 1 / 255, "offset": 0.0, "raw_range": [0, 255]}


def _with_range(models, tmp_path, normalization=None):
    path = tmp_path / "model_int8.tflite"
    meta = {**META, "input_range": RANGE, **({"normalization": normalization} if normalization else {})}
    embed_metadata(models / "int8.tflite", path, EMBEDDED_KEY, json.dumps(meta).encode())
    return path


def test_raw_pixels_warn_and_normalize_applies_the_recorded_scaling(models, tmp_path, x):
    """0-255 pixels into a model trained on [0, 1] used to be clipped silently to one answer."""
    path = _with_range(models, tmp_path, PIXELS)
    pixels = np.round(x[:4] * 255)
    np.save(tmp_path / "raw.npy", pixels)
    np.save(tmp_path / "scaled.npy", pixels / 255)
    raw = _cli(path, "--input", tmp_path / "raw.npy", "--json")
    assert raw.returncode == 0, raw.stderr
    (warning,) = raw.stderr.splitlines()
    assert warning.startswith("tflite: warning: model_int8.tflite: input values span [")
    assert "[0, 1]" in warning and "beyond it" in warning and "--normalize" in warning and "0.00392157" in warning
    assert json.loads(raw.stdout)["warnings"] == [warning.split(": ", 3)[3]]

    normalized = _cli(path, "--input", tmp_path / "raw.npy", "--normalize", "--json")
    scaled = _cli(path, "--input", tmp_path / "scaled.npy", "--json")
    assert normalized.returncode == scaled.returncode == 0 and normalized.stderr == scaled.stderr == ""
    assert json.loads(normalized.stdout)["predictions"] == json.loads(scaled.stdout)["predictions"]
    model = TFLiteModel(path)
    assert model.input_range == (0.0, 1.0) and model.normalization == (1 / 255, 0.0)
    np.testing.assert_allclose(model.normalize(pixels), pixels / 255, rtol=1e-6)


def test_normalize_is_refused_where_no_normalization_is_recorded(models, tmp_path, x):
    path = _with_range(models, tmp_path)
    np.save(tmp_path / "raw.npy", x[:2] * 255)
    proc = _cli(path, "--input", tmp_path / "raw.npy", "--normalize")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("tflite: error: --normalize: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "records no input normalization" in proc.stderr and "[0, 1]" in proc.stderr
    warned = _cli(path, "--input", tmp_path / "raw.npy")
    assert warned.returncode == 0 and warned.stderr.count("\n") == 1
    assert "records no normalization" in warned.stderr and "--normalize" not in warned.stderr


def test_range_warning_only_far_outside_the_recorded_range():
    from tflite import range_warning

    meta = {"input_range": RANGE}
    assert range_warning(np.array([0.0, 1.0]), meta) is None
    assert range_warning(np.array([-0.2, 1.3]), meta) is None  # near: standardized data drifts
    assert "up to 2 beyond it" in range_warning(np.array([0.5, 3.0]), meta)
    assert "up to 254 beyond it" in range_warning(np.array([0.0, 255.0]), meta)
    assert range_warning(np.array([0.0, 255.0]), {}) is None  # nothing recorded: nothing to say
    assert range_warning(np.array([0.0, 255.0]), {"input_range": {"min": "a", "max": 1}}) is None


def test_op_versions_are_the_files_operator_codes_and_survive_embedding(models, tmp_path):
    """``tflite.ops.op_versions``: one entry per op the runtime runs; the int8 file's kernels are later
    versions of the same ops; rewriting the file to embed metadata changes none of them."""
    from tflite.ops import op_versions

    found = {v: op_versions(models / f"{v}.tflite") for v in ("float32", "int8")}
    for variant, versions in found.items():
        assert set(versions) == set(TFLiteModel(models / f"{variant}.tflite").op_names())
        assert all(v and min(v) >= 1 for v in versions.values())
    assert found["float32"]["FULLY_CONNECTED"] == [1]
    assert found["int8"]["FULLY_CONNECTED"][0] > 1
    embed_metadata(models / "int8.tflite", tmp_path / "int8.tflite", EMBEDDED_KEY, b"{}")
    assert op_versions(tmp_path / "int8.tflite") == found["int8"]
    assert op_versions((models / "int8.tflite").read_bytes()) == found["int8"]
