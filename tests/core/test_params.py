"""core.params: text and values coerced to the type of each option's default."""

import pytest

from core.errors import UsageError
from core.params import coerce, coerce_options, parse_pairs, signature_defaults


@pytest.mark.parametrize(
    "value, default, expected",
    [
        ("3", 1, 3),
        (" 7 ", 1, 7),
        ("0.5", 0.1, 0.5),
        ("1e-3", 0.1, 0.001),
        ("2", 0.1, 2.0),
        ("true", False, True),
        ("No", True, False),
        ("1", False, True),
        ("relu", "gelu", "relu"),
        ("32,64", (16, 16), (32, 64)),
        ("8", (16,), (8,)),
        ("a,b", ["x"], ["a", "b"]),
        ("none", None, None),
        ("12", None, 12),
        ("x", None, "x"),
        (5, 1, 5),
        (3, 0.5, 3.0),
    ],
)
def test_coerce(value, default, expected):
    got = coerce(value, default)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "value, default",
    [
        ("1.5", 1),
        ("many", 1),
        ("x", 0.1),
        ("maybe", True),
        (True, 1),
        ("1,x", (1, 2)),
        (3, "text"),
    ],
)
def test_coerce_rejects(value, default):
    with pytest.raises(ValueError):
        coerce(value, default)


def test_signature_defaults_skips_leading_and_requires_defaults():
    def build(spec, filters=16, rate=0.1, **extra):
        pass

    assert signature_defaults(build, 1) == ({"filters": 16, "rate": 0.1}, True)

    def bad(spec, filters):
        pass

    with pytest.raises(TypeError, match="'filters'.*needs a default"):
        signature_defaults(bad, 1)


def test_unknown_option_suggests_and_lists():
    with pytest.raises(UsageError) as err:
        coerce_options({"filter": "3"}, {"filters": 16, "dropout": 0.1}, False, "architecture 'cnn'", "hyperparameter")
    msg = str(err.value)
    assert "architecture 'cnn' has no hyperparameter 'filter'" in msg
    assert "did you mean 'filters'" in msg and "valid: dropout, filters" in msg


def test_bad_value_names_option():
    with pytest.raises(UsageError, match=r"architecture 'cnn': hyperparameter filters='x': expected an integer"):
        coerce_options({"filters": "x"}, {"filters": 16}, False, "architecture 'cnn'", "hyperparameter")


@pytest.mark.parametrize("pair", ["novalue", "=3", ""])
def test_parse_pairs_rejects_malformed(pair):
    with pytest.raises(UsageError, match="--hp"):
        parse_pairs([pair], "--hp")


def test_parse_pairs_keeps_equals_in_value():
    assert parse_pairs(["a=1", "b=x=y"], "--hp") == {"a": "1", "b": "x=y"}
