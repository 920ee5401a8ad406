"""``hub_image_classifier`` and ``hub_text_classifier``: offline, from preset folders this test writes
with ``save_to_preset`` (small randomly initialised KerasHub models); each trains, exports int8 with
builtin ops and verifies; LoRA adapts the text backbone's Dense/EinsumDense layers; an unknown
preset name gets a did-you-mean, a known one that cannot download says what to fetch."""

import pytest
from conftest import NO_NETWORK, read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process for all of it. The proxy makes any download fail at once (nothing may be
# downloaded at test time, network or not).
JOB = """
import json, sys
import numpy as np
import keras, keras_hub
from core import KerastackError, UsageError, export, train, verify
from tflite import TFLiteModel
out = sys.argv[1]
report = {}
keras.utils.set_random_seed(0)  # the presets' random weights

backbone = keras_hub.models.ResNetBackbone(
    input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
    stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
    use_pre_activation=False, image_shape=(None, None, 3))
converter = keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0, offset=-0.5)
# As a pretrained preset holds them: BatchNorm statistics of real inputs (from one training-mode pass
# over shapes images, as the model will see them), not the initial 0 and 1, which a frozen BatchNorm
# would keep, letting activations grow layer after layer.
from plugins.datasets.shapes import load
pixels = np.repeat(load(samples=240, size=32).train[0][:128], 3, axis=-1) - 0.5
norms = [l for l in backbone.layers if isinstance(l, keras.layers.BatchNormalization)]
for layer, seen in zip(norms, keras.Model(backbone.input, [l.input for l in norms])(pixels, training=True)):
    seen = np.asarray(seen)
    gamma, beta, _, _ = layer.get_weights()
    layer.set_weights([gamma, beta, seen.mean((0, 1, 2)), seen.var((0, 1, 2))])
keras_hub.models.ResNetImageClassifier(
    backbone=backbone, num_classes=4,
    preprocessor=keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter),
).save_to_preset(out + "/resnet_preset")
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]
bert = keras_hub.models.BertBackbone(vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=32,
                                     intermediate_dim=64, max_sequence_length=32)
keras_hub.models.BertTextClassifier(
    backbone=bert, num_classes=2,
    preprocessor=keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer=keras_hub.models.BertTokenizer(vocabulary=vocab), sequence_length=16),
).save_to_preset(out + "/bert_preset")

image = train("hub_image_classifier", "shapes", epochs=3, seed=0, out=out + "/image", verbose=0,
              hparams={"preset": out + "/resnet_preset", "size": 32}, data_options={"samples": 240},
              freeze="backbone", fine_tune_after=1, fine_tune_factor=0.3, learning_rate=0.01,
              checkpoint_every=0)
report["image_params"] = [image.metrics["trainable_params"], image.metrics["total_params"]]
report["image_weights"] = image.record["initial_weights"]
# The preset's weights arrived: the built model's backbone equals the preset's.
from plugins.architectures.hub import build_image
from core import DataSpec
loaded = keras_hub.models.Backbone.from_preset(out + "/resnet_preset")
built = build_image(DataSpec((16, 16, 1), 3), preset=out + "/resnet_preset", size=32)
inner = [l for l in built.layers if isinstance(l, keras_hub.models.Backbone)][0]
report["image_backbone_equal"] = all(
    np.array_equal(a, b) for a, b in zip(inner.get_weights(), loaded.get_weights()))
text = train("hub_text_classifier", "tokens", epochs=1, seed=0, out=out + "/text", verbose=0,
             hparams={"preset": out + "/bert_preset"}, data_options={"samples": 200, "length": 16, "vocab": 64},
             lora_rank=4, learning_rate=0.003, checkpoint_every=0)
report["text_params"] = [text.metrics["trainable_params"], text.metrics["total_params"]]
report["text_lora"] = text.record["transfer"]["lora_layers"]
report["text_weights"] = text.record["initial_weights"]
for name, run, quantize in (("image", image, "none,int8"), ("text", text, "int8")):
    files = [str(p) for p in export(run.path, "tflite", {"quantize": quantize}) if str(p).endswith(".tflite")]
    for path in files:
        result = verify(path, run.path, latency_runs=5)
        key = name + ("_float32" if "float32" in path else "") + "_verify"
        report[key] = {k: result[k] for k in ("agreement", "tflite_accuracy", "keras_accuracy", "max_abs_diff")}
    report[name + "_ops"] = sorted(set(op for path in files for op in TFLiteModel(path).op_names()))
    report[name + "_json"] = json.load(open(run.path / "export" / "tflite" / "model.json"))
# --resume of a frozen, a fine-tuned and a LoRA run: each run as a Ctrl-C after its last epoch would
# leave it (checkpoint.keras, checkpoint.json, status running), resumed for one epoch more.
import io, shutil, warnings, zipfile, h5py
from core.runs import load_model, load_run
frozen = train("hub_text_classifier", "tokens", epochs=1, seed=0, out=out + "/frozen", verbose=0,
               hparams={"preset": out + "/bert_preset"}, data_options={"samples": 100, "length": 16, "vocab": 64},
               freeze="backbone", learning_rate=0.003, checkpoint_every=0)
resumes = {}
for name, run in (("frozen", frozen), ("fine_tuned", image), ("lora", text)):
    last, path = run.metrics["epochs"], run.path
    shutil.copyfile(path / "model.keras", path / "checkpoint.keras")
    json.dump({"epoch": last, "monitor": "val_loss", "best": None}, open(path / "checkpoint.json", "w"))
    record = json.load(open(path / "run.json"))
    record["status"], record["training"]["epochs"] = "running", last + 1
    json.dump(record, open(path / "run.json", "w"))
    (path / "model.keras").unlink()
    with zipfile.ZipFile(path / "checkpoint.keras") as archive:
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
            saved = [np.asarray(h5["optimizer/vars"][str(i)]) for i in range(len(h5["optimizer/vars"]))]
    with warnings.catch_warnings(record=True) as caught:  # what Keras alone does with the file
        warnings.simplefilter("always")
        try:
            plain = int(keras.saving.load_model(path / "checkpoint.keras").optimizer.iterations)
        except ValueError:
            plain = "error"
    loaded = load_model(path / "checkpoint.keras", record["custom_modules"], transfer=record["transfer"], epoch=last)
    values = [np.asarray(v) for v in loaded.optimizer.variables]
    resumed = train(resume=path, verbose=0)
    resumes[name] = {
        "keras_alone": [plain, any("Skipping variable loading" in str(w.message) for w in caught)],
        "exact": len(values) == len(saved) and all(np.array_equal(a, b) for a, b in zip(values, saved)),
        "iterations": [int(loaded.optimizer.iterations), int(saved[0])],
        "trainable": [run.metrics["trainable_params"], resumed.metrics["trainable_params"]],
        "final": [resumed.record["status"], resumed.metrics["epochs"],
                  int(load_run(path).model.optimizer.iterations)],
    }
report["resumes"] = resumes
errors = {}
for name, call in {
    "unknown": lambda: train("hub_text_classifier", "tokens", hparams={"preset": "bert_tiny_en_uncasd"},
                             out=out + "/unknown", verbose=0),
    "offline": lambda: train("hub_image_classifier", "shapes", hparams={"preset": "resnet_18_imagenet"},
                             out=out + "/offline", verbose=0),
    "images_to_text": lambda: train("hub_text_classifier", "shapes", hparams={"preset": out + "/bert_preset"},
                                    out=out + "/wrong", verbose=0),
}.items():
    try:
        call()
        errors[name] = None
    except KerastackError as exc:
        errors[name] = [type(exc).__name__, str(exc)]
report["errors"] = errors
report["left_behind"] = [n for n in ("unknown", "offline", "wrong") if __import__("os").path.exists(out + "/" + n)]
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hub")
    env = {"KERAS_BACKEND": "tensorflow", "KAGGLEHUB_CACHE": str(out / "kagglehub")}
    env.update(NO_NETWORK)
    run_python(JOB, out, env=env)
    return read_json(out / "report.json")


def test_image_preset_folder_trains_frozen_and_exports_int8(report):
    trainable, total = report["image_params"]
    assert trainable == 32 * 3 + 3 < total  # only the new head: 32 features x 3 shapes
    assert report["image_backbone_equal"]
    assert report["image_weights"]["source"] == "preset" and report["image_weights"]["path"].endswith("resnet_preset")
    # The float32 file computes what Keras does, preprocessing included (a reloaded KerasHub backbone
    # exported with batch statistics until the model said training=False: max diff 0.19). A random
    # "pretrained" ResNet learns little in 3 epochs, so the int8 check is on the probabilities too.
    assert report["image_float32_verify"]["max_abs_diff"] <= 1e-4, report["image_float32_verify"]
    assert report["image_verify"]["max_abs_diff"] <= 0.05, report["image_verify"]
    assert report["image_verify"]["agreement"] >= 0.9, report["image_verify"]
    assert not [op for op in report["image_ops"] if op.startswith("Flex")]
    (inside,) = report["image_json"]["model_preprocessing"]
    # The preset's converter (x / 255 - 0.5 on 0-255 pixels) from the dataset's [0, 1] pixels.
    assert inside["scale"] == pytest.approx([1.0] * 3) and inside["offset"] == pytest.approx([-0.5] * 3)


def test_text_preset_folder_trains_lora_and_exports_int8(report):
    trainable, total = report["text_params"]
    assert trainable < total / 3
    lora = report["text_lora"]
    assert any("dense" in n for n in lora) and any("query" in n or "key" in n or "value" in n for n in lora), lora
    assert report["text_weights"]["source"] == "preset"
    # A random "pretrained" BERT learns little from 1 epoch of LoRA: what counts is that it trains,
    # saves merged, and the int8 file agrees with the Keras model.
    assert report["text_verify"]["agreement"] >= 0.9, report["text_verify"]
    assert not [op for op in report["text_ops"] if op.startswith("Flex")]


def test_resume_restores_the_optimizer_of_frozen_fine_tuned_and_lora_runs(report):
    """Keras alone drops the optimizer state of these checkpoints (a rebuilt KerasHub backbone has
    every layer trainable: a warning for a count that differs, an error for a shape); loaded for
    --resume, the run's trainable layers are set again and the state is the one saved, exactly."""
    for name, epochs_saved in (("frozen", 1), ("fine_tuned", 2), ("lora", 1)):
        got = report["resumes"][name]
        assert got["keras_alone"] in ([0, True], ["error", False]), (name, got)
        assert got["exact"], (name, got)
        saved = got["iterations"][1]
        assert got["iterations"] == [saved, saved] and saved > 0, (name, got)
        # fine_tuned: the head and then (from epoch 2, a new optimizer) every layer but BatchNorm.
        assert got["trainable"][1] == got["trainable"][0] or name == "fine_tuned", (name, got)
        assert got["trainable"][1] > got["trainable"][0] or name != "fine_tuned", (name, got)
        # One epoch more, continuing the saved count (a fresh optimizer would count one epoch).
        epochs = {"frozen": 2, "fine_tuned": 4, "lora": 2}[name]
        assert got["final"] == ["complete", epochs, saved + saved // epochs_saved], (name, got)


def test_bad_presets_fail_in_one_line_and_leave_nothing(report):
    errors = report["errors"]
    kind, text = errors["unknown"]
    assert kind == "UsageError" and "did you mean 'bert_tiny_en_uncased'" in text and "\n" not in text
    kind, text = errors["offline"]
    assert kind == "KerastackError" and "kagglehub.model_download" in text and "preset=DIR" in text
    kind, text = errors["images_to_text"]
    assert kind == "UsageError" and "takes token ids" in text
    assert report["left_behind"] == []
