"""``series``: windows cut in time order, never across a split; CSV, .npz and the built-in sine."""

import numpy as np
import pytest

from core import KerastackError, PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import series


@pytest.fixture(scope="module")
def sine():
    return series.load()


def test_registered_with_its_options_and_loads_through_the_host():
    host = PluginHost(["plugins.datasets.series"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("series")
    assert set(entry.defaults) == {
        "path", "target", "window", "horizon", "stride", "validation", "test", "season", "delimiter"
    }  # fmt: skip
    dataset = entry.call(**entry.options({"window": "20", "horizon": "3"}))
    check_dataset(dataset, "series")
    spec = spec_of(dataset)
    assert (spec.task, spec.input_shape, spec.target_shape) == ("forecasting", (20, 1), (3,))


def test_the_builtin_sine_windows_in_time_order(sine):
    values = series.sine()
    assert (
        len(values) == 2000 and abs(values.mean() - 50) < 0.2 and 7.0 < values.std() < 7.3
    )  # 10 / sqrt(2), noise sd 1
    assert sine.info == {"target_index": 0, "season": 50}
    start = 0
    for name, steps in (("train", 1400), ("validation", 300), ("test", 300)):
        x, y = sine.split(name)
        assert x.shape == (steps - 72 + 1, 64, 1) and y.shape == (steps - 72 + 1, 8)
        assert x.dtype == y.dtype == np.float32
        part = values[start : start + steps]  # every window lies inside its own part of the series
        np.testing.assert_array_equal(x[:, :, 0], np.stack([part[i : i + 64] for i in range(len(x))]))
        np.testing.assert_array_equal(y, np.stack([part[i + 64 : i + 72] for i in range(len(x))]))
        start += steps


def test_stride_and_empty_splits():
    dataset = series.load(window=10, horizon=2, stride=5, validation=0, test=0.1)
    assert dataset.validation is None and len(dataset.train[0]) == (1800 - 12) // 5 + 1
    np.testing.assert_array_equal(dataset.train[0][1, :, 0], series.sine()[5:15])


def test_a_csv_of_several_columns_forecasts_the_target(tmp_path):
    steps = np.arange(100)
    rows = ["time,load,temp"] + [f"{t},{2 * t},{t % 7}" for t in steps]
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    dataset = series.load(path=str(path), target="load", window=5, horizon=2, validation=0.2, test=0.2, season=7)
    x, y = dataset.train
    assert x.shape == (60 - 7 + 1, 5, 3) and dataset.info == {"target_index": 1, "season": 7}
    np.testing.assert_array_equal(y[0], [10, 12])  # the load after steps 0..4
    np.testing.assert_array_equal(dataset.test[0][0, :, 0], np.arange(80, 85))


def test_an_npz_array_is_the_series(tmp_path):
    np.savez(tmp_path / "s.npz", series=np.stack([np.arange(50.0), -np.arange(50.0)], axis=1))
    dataset = series.load(path=str(tmp_path / "s.npz"), target="1", window=4, horizon=1, validation=0, test=0)
    np.testing.assert_array_equal(dataset.train[1][:2, 0], [-4, -5])
    assert dataset.info["season"] == 0 and dataset.test is None


def write(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"window": 200, "horizon": 120}, UsageError, r"the validation part of built-in noisy sine has 300 steps, fewer "
         r"than window \+ horizon = 200 \+ 120; lower options window or horizon"),
        ({"window": 1400}, UsageError, r"the train part .* has 1400 steps, .*; lower options window or horizon, "
         r"or lower options validation and test$"),
        ({"target": "temp"}, UsageError, r"option target='temp': no such column in built-in noisy sine.*columns: sine"),
        ({"stride": 0}, UsageError, r"option stride=0: expected an integer at least 1"),
        ({"validation": 0.6, "test": 0.5}, UsageError, r"options validation and test must be fractions"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors(options, error, message):
    with pytest.raises(error, match=r"^dataset 'series': " + message) as caught:
        series.load(**options)
    assert "\n" not in str(caught.value)


def test_bad_files_are_one_line_errors(tmp_path):
    text = write(tmp_path, "a,b\n1,2\n3,x\n4,5\n6,n/a\n")
    with pytest.raises(KerastackError, match=r"column 'b' of .*s.csv is not numeric: 2 cell\(s\) .*lines 3 and 5"):
        series.load(path=text, window=1, horizon=1, validation=0, test=0)
    np.savez(tmp_path / "two.npz", a=np.zeros(5), b=np.zeros(5))
    with pytest.raises(KerastackError, match=r"two.npz holds 2 arrays \(a, b\); expected one"):
        series.load(path=str(tmp_path / "two.npz"))
    with pytest.raises(UsageError, match=r"option path='nope.csv': no such file"):
        series.load(path="nope.csv")
