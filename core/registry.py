"""Named entries that plugins register: architectures, datasets, exporters, callbacks, tasks."""

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import KerastackError, UsageError, choices_text, did_you_mean
from core.params import coerce_options, signature_defaults

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

# kind → (hook name, how many leading positional arguments the callable takes before its options,
#         what its options are called, extra keyword arguments of register() with their defaults)
KINDS = {
    "architecture": ("register_architectures", 1, "hyperparameter", {"tasks": ("classification",)}),
    "dataset": ("register_datasets", 0, "option", {}),
    "exporter": ("register_exporters", 1, "option", {"backend": None, "report": None}),
    "callback": ("register_callbacks", 0, "option", {}),
    "task": ("register_tasks", 0, "option", {}),
}


class PluginLike(Protocol):
    """What an entry needs of the plugin that registered it (a ``core.plugins.PluginInfo``)."""

    name: str

    def label(self) -> str: ...


def trace(message: str) -> None:
    """One line on stderr when KERASTACK_TRACE_PLUGINS is set (``--trace-plugins``)."""
    if os.environ.get("KERASTACK_TRACE_PLUGINS"):
        print(f"kerastack: trace: {message}", file=sys.stderr)


@dataclass
class Entry:
    """One registered name: who registered it, what to call, and the options it takes."""

    kind: str
    name: str
    func: Callable[..., Any]
    summary: str
    plugin: PluginLike  # core.plugins.PluginInfo
    extra: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    accepts_any: bool = False

    @property
    def owner(self) -> str:
        """``"architecture 'cnn'"``: the kind and name, as errors name the entry."""
        return f"{self.kind} {self.name!r}"

    def options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check and type ``given`` options (text or values) against this entry's defaults."""
        return coerce_options(given, self.defaults, self.accepts_any, self.owner, KINDS[self.kind][2])

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the plugin's function; an exception in it becomes an error naming the plugin."""
        trace(
            f"calling {self.owner} from {self.plugin.label()}: "
            f"{getattr(self.func, '__name__', 'function')}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        )
        try:
            return self.func(*args, **kwargs)
        except KerastackError:
            raise
        except Exception as exc:
            func = getattr(self.func, "__name__", "function")
            raise KerastackError(
                f"{self.owner} from {self.plugin.label()} failed in {func}(): {type(exc).__name__}: {exc}"
            ) from exc

    def describe(self) -> dict[str, Any]:
        """The entry as JSON-able data (``kerastack plugins --json``): name, summary, plugin, extras, options."""
        out = {"name": self.name, "summary": self.summary, "plugin": self.plugin.name}
        out.update({k: _jsonable(v) for k, v in self.extra.items()})
        out[KINDS[self.kind][2] + "s"] = {k: _jsonable(v) for k, v in self.defaults.items()}
        return out


class Registry:
    """The entries of one kind, with the conflicts and errors met while collecting them."""

    def __init__(self, kind: str, broken: Iterable[PluginLike] = ()) -> None:
        self.kind = kind
        self.entries = {}
        self.conflicts = {}  # name → [Entry, Entry, ...] registered by different plugins
        self.broken = list(broken)  # PluginInfo of plugins that failed to load or register

    def add(self, entry: Entry) -> None:
        """Add ``entry``; a name registered before becomes a conflict, reported when it is asked for."""
        if entry.name in self.conflicts:
            self.conflicts[entry.name].append(entry)
        elif entry.name in self.entries:
            self.conflicts[entry.name] = [self.entries.pop(entry.name), entry]
        else:
            self.entries[entry.name] = entry

    def names(self) -> list[str]:
        """Every registered name, conflicting ones included, sorted."""
        return sorted(set(self.entries) | set(self.conflicts))

    def get(self, name: str) -> Entry:
        """The entry called ``name``; a ``UsageError`` for a conflict or an unknown name (with a guess,
        the valid names and the broken plugins that might have registered it)."""
        if name in self.conflicts:
            plugins = list(dict.fromkeys(e.plugin.label() for e in self.conflicts[name]))
            if len(plugins) == 1:
                raise UsageError(
                    f"{self.kind} {name!r} is registered {len(self.conflicts[name])} times by "
                    f"{plugins[0]}; a plugin registers each name once"
                )
            who = " and ".join(e.plugin.label() for e in self.conflicts[name])
            raise UsageError(
                f"{self.kind} {name!r} is registered by both {who}; disable one with KERASTACK_DISABLE_PLUGINS=NAME"
            )
        if name not in self.entries:
            msg = f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; valid: {choices_text(self.names())}"
            if self.broken:
                msg += "; broken plugins: " + ", ".join(p.label() for p in self.broken)
            raise UsageError(msg)
        return self.entries[name]


def make_entry(
    kind: str, plugin: PluginLike, name: str, func: Callable[..., Any], summary: str = "", **extra: Any
) -> Entry:
    """Validate one ``register(...)`` call; ``TypeError`` says what is wrong with it."""
    _, skip, _, allowed = KINDS[kind]
    unknown = set(extra) - set(allowed)
    if unknown:
        raise TypeError(f"register() got unexpected keyword(s) {sorted(unknown)}; valid: {sorted(allowed)}")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        # Names become folder names (RUN/export/NAME): nothing that could leave the folder.
        raise TypeError(
            f"{kind} name must be a non-empty string of letters, digits, '_', '-' or '.' "
            f"not starting with '.', got {name!r}"
        )
    if not callable(func):
        raise TypeError(f"{kind} {name!r}: expected a callable, got {type(func).__name__}")
    values = {**allowed, **extra}
    if "tasks" in values:
        tasks = values["tasks"]
        values["tasks"] = (tasks,) if isinstance(tasks, str) else tuple(tasks)
    defaults, accepts_any = signature_defaults(func, skip)
    return Entry(kind, name, func, str(summary or ""), plugin, values, defaults, accepts_any)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if callable(value):
        return f"{value.__module__}.{getattr(value, '__qualname__', type(value).__name__)}"
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return repr(value)
