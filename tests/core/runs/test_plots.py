"""Plots of a run: learning curves and the confusion matrix, from files written by hand."""

import numpy as np
import pytest
from conftest import run_python
from fake_runs import make_run
from PIL import Image

from core import KerastackError
from core.runs.plots import plot_confusion, read_predictions, write_run_plots


def _png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_curves_and_confusion(tmp_path):
    run = make_run(tmp_path, epochs=4)
    written = write_run_plots(run)
    assert written == [run / "curves.png", run / "confusion.png"]
    width, height = _png_size(run / "curves.png")
    assert width > height > 200  # two panels side by side: loss, accuracy
    _png_size(run / "confusion.png")
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []  # no temporary files


def test_no_predictions_or_not_classification_gives_curves_only(tmp_path):
    run = make_run(tmp_path, "a", predictions=False)
    assert write_run_plots(run) == [run / "curves.png"]
    run = make_run(tmp_path, "b", task="regression")
    assert write_run_plots(run) == [run / "curves.png"]


def test_a_run_without_history_yet_gives_nothing(tmp_path):
    run = make_run(tmp_path, status="running")
    (run / "history.csv").unlink()
    assert write_run_plots(run) == []


def test_diverged_loss_and_single_epoch(tmp_path):
    run = make_run(tmp_path, epochs=1, predictions=False)
    (run / "history.csv").write_text("epoch,loss,accuracy,val_loss,val_accuracy\n1,nan,0.3,inf,0.2\n")
    assert write_run_plots(run) == [run / "curves.png"]


def test_predictions_file(tmp_path):
    path = tmp_path / "predictions.npz"
    np.savez(path, y_true=np.array([0, 1, 2]), y_pred=np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]]))
    y_true, y_pred, split = read_predictions(path)
    assert y_true.tolist() == [0, 1, 2] and y_pred.tolist() == [0, 1, 0] and split is None
    np.savez(path, y_true=np.array([0, 1]))
    with pytest.raises(KerastackError, match="missing array 'y_pred'"):
        read_predictions(path)
    np.savez(path, y_true=np.array([0, 1]), y_pred=np.array([1]))
    with pytest.raises(KerastackError, match="y_true has 2 labels but y_pred has 1"):
        read_predictions(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(KerastackError, match="unreadable predictions"):
        read_predictions(path)


def test_many_classes_stay_a_readable_size(tmp_path):
    y = np.arange(90) % 45  # more classes than get labels or counts
    plot_confusion(y, y, tmp_path / "c.png", num_classes=45)
    assert max(_png_size(tmp_path / "c.png")) <= 13.2 * 110


def test_plotting_leaves_pyplot_and_frameworks_alone(tmp_path):
    """Object-oriented matplotlib only: a notebook's pyplot backend is not switched, no keras."""
    run = make_run(tmp_path)
    proc = run_python(
        """
        import sys
        from core.runs.plots import write_run_plots
        write_run_plots(sys.argv[1])
        print("LOADED", sorted(m for m in ("matplotlib.pyplot", "keras", "tensorflow", "jax", "torch")
                               if m in sys.modules))
    """,
        run,
    )
    assert "LOADED []" in proc.stdout
