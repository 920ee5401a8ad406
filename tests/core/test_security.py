"""Unsafe files and names are refused."""

import pytest
from conftest import one_line_error, run_cli, run_python

from core.plugins import PluginHost

pytestmark = pytest.mark.slow


def test_lambda_model_is_refused_unless_unsafe(tmp_path):
    """A .keras whose Lambda carries Python bytecode (here: it writes a file) never runs by default."""
    run = tmp_path / "run"
    run_python(
        """
        import json, sys, pathlib
        import keras
        run = pathlib.Path(sys.argv[1]); run.mkdir()
        marker = str(run.parent / "pwned")
        # A literal path in the code: serialized bytecode keeps constants, not closures.
        attack = eval(f"lambda t: (open({marker!r}, 'w').write('x'), t)[1]")
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Lambda(attack, output_shape=(8, 8, 1))(inputs)
        outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
        keras.Model(inputs, outputs).save(run / "model.keras")
        (run / "run.json").write_text(json.dumps({"dataset": {"name": "digits", "options": {}},
            "training": {"backend": "tensorflow"}, "plugins": [], "spec": {"task": "classification"}}))
    """,
        run,
        env={"KERAS_BACKEND": "tensorflow"},
    )
    (tmp_path / "pwned").unlink(missing_ok=True)
    line = one_line_error(run_cli("export", run, "--to", "tflite"), 1)
    assert "refused: the model holds Python code (a Lambda layer)" in line and "--unsafe" in line
    assert not (tmp_path / "pwned").exists()
    proc = run_cli("--unsafe", "export", run, "--to", "tflite", "--opt", "allow_select_ops=true")
    assert (tmp_path / "pwned").exists(), proc.stderr  # with --unsafe the code did run


@pytest.mark.parametrize("name", ["../escape", "/abs", ".hidden", "a/b", ""])
def test_names_that_could_escape_a_folder_are_refused(write_plugin, name):
    path = write_plugin(
        "sneaky",
        f"""
        from core import hookimpl

        @hookimpl
        def register_exporters(register):
            register({name!r}, lambda ctx: [])
    """,
    )
    host = PluginHost([str(path)], builtins=(), entry_points=False, disabled=())
    assert host.registry("exporter").names() == []
    assert "name must be a non-empty string of letters" in host.plugins["sneaky"].error
