"""core.task: tasks looked up by name in the plugin hosts, what a scorer's sums are called, and a
registered thing that is not a task told as such. No keras."""

import numpy as np
import pytest

from core.errors import UsageError
from core.plugins import PluginHost
from core.task import Scorer, Task, task_named


def host_with(tmp_path, source):
    path = tmp_path / "tasks_plugin.py"
    path.write_text(source)
    return PluginHost([str(path)], builtins=(), entry_points=False, disabled=())


def test_a_task_from_a_plugin_module_is_found_in_its_host(tmp_path):
    host = host_with(
        tmp_path,
        "from core import Task, hookimpl\n"
        "class Ranking(Task):\n"
        "    metric = ('ndcg', True)\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        "    register('ranking_t1', Ranking, summary='ordered scores')\n",
    )
    task = task_named("ranking_t1", hosts=lambda: [host])
    assert isinstance(task, Task) and task.name == "ranking_t1" and task.metric == ("ndcg", True)
    assert task_named("ranking_t1") is task  # made once per process


def test_unknown_task_lists_the_registered_ones():
    with pytest.raises(UsageError, match=r"unknown task 'rankin'.*valid: classification, .*regression"):
        task_named("rankin")


def test_a_registered_callable_must_make_a_task(tmp_path):
    host = host_with(
        tmp_path,
        "from core import hookimpl\n"
        "def make():\n"
        "    return 42\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        "    register('not_a_task', make)\n",
    )
    with pytest.raises(UsageError, match=r"^task 'not_a_task' from .*tasks_plugin.* is not a core.Task"):
        task_named("not_a_task", hosts=lambda: [host])


class Counting(Scorer):
    def add(self, x, y, keras_out, out=None):
        self.mean("hits", np.sum(keras_out == y), None if out is None else np.sum(out == y), len(y))
        if out is not None:
            self.mean("agreement", None, np.sum(out == keras_out), len(y))


def test_scorer_names_each_side_and_averages_over_batches():
    scorer = Counting(Task())
    scorer.add(None, np.array([1, 2]), np.array([1, 2]), np.array([1, 0]))
    scorer.add(None, np.array([3, 4, 5, 6]), np.array([0, 4, 5, 6]), np.array([3, 4, 5, 6]))
    # Sums over all six samples, not a mean of the two batches' means.
    assert scorer.result("tflite") == {"keras_hits": 5 / 6, "tflite_hits": 5 / 6, "agreement": 4 / 6}
    assert scorer.result() == {"keras_hits": 5 / 6, "hits": 5 / 6, "agreement": 4 / 6}
    assert scorer.keras_result() == {"hits": 5 / 6}
    keras_only = Counting(Task())
    keras_only.add(None, np.array([1, 2]), np.array([1, 0]))
    assert keras_only.result("tflite") == {"keras_hits": 0.5}
