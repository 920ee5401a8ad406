"""A dataset of integer token ids that sets no ``vocab_size`` (as many were first published): the
vocabulary is inferred from the train split, checked against the other splits, and recorded."""

from conftest import one_line_error, read_json, run_cli

IDS_PLUGIN = """
from core import Dataset, hookimpl


@hookimpl
def register_datasets(register):
    register("ids", load, summary="token ids without a vocab_size")


def load(stream=False, bad_validation=False):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, (300, 10)).astype("int32")
    x[0, 0] = 19  # the largest id of the train split: vocab_size 20
    y = (x == 7).any(axis=1).astype("int32")
    train, validation, test = (x[:200], y[:200]), (x[200:250], y[200:250]), (x[250:], y[250:])
    if bad_validation:
        validation[0][3, 4] = 25
    if stream:
        import keras

        class Batches(keras.utils.PyDataset):
            def __len__(self):
                return 4

            def __getitem__(self, i):
                return x[i * 50 : (i + 1) * 50], y[i * 50 : (i + 1) * 50]

        train = Batches()
    return Dataset(train, validation, test, class_names=("no 7", "7"))
"""

TRANSFORMER = ["--arch", "transformer", "--hp", "dim=8", "--hp", "heads=1", "--hp", "blocks=1", "--hp", "mlp_dim=16"]
GRU = ["--arch", "gru", "--hp", "units=8", "--hp", "embed_dim=4"]


def _train(plugin, out, arch, *data_options):
    options = [a for option in data_options for a in ("--data-opt", option)]
    return run_cli(
        "train", *arch, "--data", "ids", *options, "--plugin", plugin, "--backend", "jax", "--epochs", "1",
        "--seed", "0", "--out", out, "--quiet",
    )  # fmt: skip


def test_vocab_size_is_inferred_for_transformer_and_gru(tmp_path, write_plugin):
    plugin = write_plugin("ids_plugin", IDS_PLUGIN)
    for name, arch in (("transformer", TRANSFORMER), ("gru", GRU)):
        proc = _train(plugin, tmp_path / name, arch)
        assert proc.returncode == 0, proc.stderr
        spec = read_json(tmp_path / name / "run.json")["spec"]
        assert spec["vocab_size"] == 20 and spec["input_dtype"] == "int32", spec


def test_ids_beyond_the_inferred_vocab_or_a_streamed_split_say_what_to_set(tmp_path, write_plugin):
    plugin = write_plugin("ids_plugin", IDS_PLUGIN)
    line = one_line_error(_train(plugin, tmp_path / "bad", TRANSFORMER, "bad_validation=true"), 1)
    assert "the validation split has token id 25" in line and "set vocab_size=26" in line, line
    assert not (tmp_path / "bad").exists()

    line = one_line_error(_train(plugin, tmp_path / "stream", GRU, "stream=true"), 1)
    assert "its train split streams" in line and "set vocab_size" in line, line
