"""Options given as text (``--hp k=v``) or as Python values, checked against a callable's defaults.

The type of each option is the type of its default: ``bool``, ``int``, ``float``, ``str``, a tuple or
list (comma-separated on the command line), or ``None`` (the text is read as a number, a boolean or
``none`` where it looks like one, else kept as a string).
"""

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from core.errors import UsageError, choices_text, did_you_mean

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def signature_defaults(func: Callable[..., Any], skip: int) -> tuple[dict[str, Any], bool]:
    """``(defaults, accepts_any)`` for ``func`` after its first ``skip`` positional parameters.

    Raises ``TypeError`` for a parameter without a default: every option must have one, so that the
    core can show it and coerce text to its type.
    """
    params = list(inspect.signature(func).parameters.values())
    defaults, accepts_any = {}, False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    skipped = {p.name for p in positional[:skip]}
    if len(positional) < skip and not any(p.kind == p.VAR_POSITIONAL for p in params):
        raise TypeError(f"{func.__qualname__} must take {skip} positional argument(s)")
    for p in params:
        if p.name in skipped or p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            accepts_any = True
            continue
        if p.default is p.empty:
            raise TypeError(f"parameter {p.name!r} of {func.__qualname__} needs a default value")
        defaults[p.name] = p.default
    return defaults, accepts_any


def parse_pairs(pairs: Iterable[object] | None, flag: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; a malformed pair is a usage error naming ``flag``."""
    out = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: expected NAME=VALUE")
        out[key] = value
    return out


def coerce_options(
    given: Mapping[str, Any] | None, defaults: Mapping[str, Any], accepts_any: bool, owner: str, what: str
) -> dict[str, Any]:
    """Check ``given`` (name → text or value) against ``defaults``; return name → typed value.

    ``owner`` names who takes the options (``architecture 'cnn'``), ``what`` what they are called
    (``hyperparameter``); both appear in errors.
    """
    out = {}
    for name, value in (given or {}).items():
        if name not in defaults:
            if accepts_any:
                out[name] = _auto(value) if isinstance(value, str) else value
                continue
            raise UsageError(
                f"{owner} has no {what} {name!r}{did_you_mean(name, defaults)}; valid: {choices_text(defaults)}"
            )
        try:
            out[name] = coerce(value, defaults[name])
        except ValueError as exc:
            raise UsageError(f"{owner}: {what} {name}={value!r}: {exc}") from None
    return out


def coerce(value: Any, default: Any) -> Any:
    """``value`` (text or a Python value) as the type of ``default``; ``ValueError`` says what was expected."""
    if isinstance(default, bool):
        return _bool(value)
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError("expected an integer") from None
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            return float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    if isinstance(default, (tuple, list)):
        items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value
        if not isinstance(items, (tuple, list)):
            raise ValueError("expected a comma-separated list")
        element = default[0] if default else None
        typed = [coerce(v, element) if element is not None else _auto(v) for v in items]
        return type(default)(typed)
    if default is None:
        return _auto(value) if isinstance(value, str) else value
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _auto(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
