"""The call a process hands its child (``core.proc.request``), through ``call_in_backend``: a value
comes back, an error comes back as the same one-line error, a stop as the same stop (SIGTERM
gives exit 143 here too), and only a top-level function can be handed over."""

import signal
import textwrap

import pytest

from core import call_in_backend
from core.errors import Interrupted, KerastackError, UsageError
from core.proc.request import target

HELPERS = """
import signal

from core.errors import Interrupted, UsageError


def add(a, b):
    return a + b


def refuse():
    raise UsageError("--colour 'blu' (did you mean 'blue'?); valid: blue, red")


def crash():
    raise ValueError("no\\nmore")


def stopped():
    raise Interrupted(signal.SIGTERM)
"""


@pytest.fixture(scope="module")
def helpers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("helpers")
    (folder / "child_helpers.py").write_text(textwrap.dedent(HELPERS))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        patch.setenv("PYTHONPATH", str(folder), prepend=":")
        import child_helpers

        yield child_helpers


def test_a_value_and_errors_come_back_as_they_were(helpers):
    assert call_in_backend("jax", helpers.add, {"a": 2, "b": 3}) == 5
    with pytest.raises(UsageError, match=r"^--colour 'blu' \(did you mean 'blue'\?\); valid: blue, red$"):
        call_in_backend("jax", helpers.refuse, {})
    with pytest.raises(KerastackError, match="^ValueError: no\nmore$") as error:
        call_in_backend("jax", helpers.crash, {})
    assert not isinstance(error.value, UsageError)


def test_a_stop_in_the_child_is_the_same_stop_here(helpers):
    """It came back as a plain KeyboardInterrupt: a SIGTERM'd child then exited 130, not 143."""
    with pytest.raises(Interrupted) as stop:
        call_in_backend("jax", helpers.stopped, {})
    assert (stop.value.signum, stop.value.exit_code) == (signal.SIGTERM, 143)


def test_only_a_top_level_function_can_be_handed_over(helpers):
    def inner():
        pass

    assert target(helpers.add) == "child_helpers:add"
    for function in (inner, lambda: None, print.__call__):
        with pytest.raises(TypeError, match="top level of a module"):
            target(function)
