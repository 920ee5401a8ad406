"""Loading plugins — built-in, installed, or named by the user — through one path.

Order: the built-in modules below; entry points in group ``kerastack``; modules or ``.py`` files from
``--plugin`` / ``KERASTACK_PLUGINS``. A plugin that fails to import or register is recorded as broken,
not raised: the commands that do not need it keep working, and ``kerastack plugins`` shows the error.
"""

import importlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from core import hookspecs
from core.errors import did_you_mean, one_line
from core.registry import KINDS, Registry, make_entry, trace

BUILTIN_KINDS = ("plugins.architectures", "plugins.datasets", "plugins.deployment", "plugins.tasks")


def builtin_plugins() -> tuple[str, ...]:
    """Every public module or package of the built-in plugin packages, found without importing them.

    A plugin is a module (``plugins/architectures/cnn.py``) or a package whose ``__init__`` holds the
    hooks (``plugins/deployment/tflite/``), as with third-party plugins. Names starting with ``_``
    hold shared code (e.g. custom layers), not plugins.
    """
    found = []
    for package in BUILTIN_KINDS:
        spec = importlib.util.find_spec(package)
        for module in pkgutil.iter_modules(spec.submodule_search_locations):
            if not module.name.startswith("_"):
                found.append(f"{package}.{module.name}")
    return tuple(sorted(found, key=lambda m: (BUILTIN_KINDS.index(m.rsplit(".", 1)[0]), m)))


@dataclass
class PluginInfo:
    """Where a plugin came from, and what went wrong with it, if anything."""

    name: str
    origin: str  # "built-in", "package", "module" or "path"
    location: str  # module name or file path
    package: str | None = None
    version: str | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)

    def label(self) -> str:
        """``"plugin 'cnn' (built-in)"``: how messages name the plugin and where it came from."""
        if self.origin == "package":
            where = f"{self.package} {self.version}"
        elif self.origin == "built-in":
            where = "built-in"
        else:
            where = self.location
        return f"plugin {self.name!r} ({where})"

    def describe(self) -> dict[str, Any]:
        """The plugin as JSON-able data: name, origin, location, package, hooks and any error."""
        out = {"name": self.name, "origin": self.origin, "location": self.location}
        if self.package:
            out.update(package=self.package, version=self.version)
        out["hooks"] = list(self.hooks)
        if self.error:
            out["error"] = self.error
        return out


def env_list(name: str) -> list[str]:
    """The comma-separated items of environment variable ``name`` (none when it is unset)."""
    return [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]


class PluginHost:
    """A pluggy manager with every plugin loaded, and the registries built from it on demand.

    ``extra`` are module names or ``.py`` paths (``--plugin``); ``KERASTACK_PLUGINS`` adds more and
    ``KERASTACK_DISABLE_PLUGINS`` names plugins to skip. Each host is independent: tests make their own.
    """

    def __init__(
        self,
        extra: Iterable[str] = (),
        *,
        builtins: Iterable[str] | None = None,
        entry_points: bool = True,
        disabled: Iterable[str] | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        # The same --plugin given twice (or also in KERASTACK_PLUGINS) is one plugin.
        self.extra = tuple(dict.fromkeys(tuple(extra) + tuple(env_list("KERASTACK_PLUGINS"))))
        self.disabled = set(env_list("KERASTACK_DISABLE_PLUGINS") if disabled is None else disabled)
        self.plugins = {}  # name → PluginInfo, in load order
        self._objects = {}  # name → the registered module or object
        self._registries = {}
        for module in builtin_plugins() if builtins is None else builtins:
            self._load(PluginInfo(module, "built-in", module), lambda m=module: importlib.import_module(m))
        if entry_points:
            for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT):
                dist = ep.dist
                info = PluginInfo(
                    ep.name, "package", ep.value, dist.name if dist else None, dist.version if dist else None
                )
                self._load(info, ep.load)
        for spec in self.extra:
            self._load(*_user_plugin(spec))
        self._reject_unknown_hooks()
        self.pm.check_pending()

    # -- loading -----------------------------------------------------------------------------------
    def _load(self, info: PluginInfo, loader: Callable[[], object]) -> None:
        if info.name in self.disabled:
            return
        if info.name in self.plugins:
            info.error = f"a plugin named {info.name!r} is already loaded ({self.plugins[info.name].label()})"
            self.plugins[info.name + f"#{len(self.plugins)}"] = info
            return
        self.plugins[info.name] = info
        try:
            obj = loader()
            twin = next((n for n, o in self._objects.items() if o is obj), None)
            if twin is not None:
                # One module under two names (an entry point and --plugin): its hooks would run twice.
                info.error = (
                    f"the same module is already loaded as {self.plugins[twin].label()}; not loaded a second time"
                )
                trace(f"{info.label()} skipped: {info.error}")
                return
            self.pm.register(obj, name=info.name)
        except BaseException as exc:  # a plugin must not take the host down, even with SystemExit
            if isinstance(exc, KeyboardInterrupt):
                raise
            info.error = one_line(exc)
            trace(f"{info.label()} failed to load: {info.error}")
            return
        self._objects[info.name] = obj
        info.hooks = sorted(c.name for c in self.pm.get_hookcallers(obj) or ())
        trace(f"loaded {info.label()}: hooks {', '.join(info.hooks) or '(none)'}")

    def _reject_unknown_hooks(self) -> None:
        """A hook implementation whose name matches no spec (a typo) marks its plugin broken."""
        for name, caller in list(vars(self.pm.hook).items()):
            if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                info = self.plugins[impl.plugin_name]
                info.error = f"hook {name!r} matches no kerastack hook{did_you_mean(name, HOOKS)}"
                self._unregister(info)

    def _unregister(self, info: PluginInfo) -> None:
        obj = self._objects.pop(info.name, None)
        if obj is not None and self.pm.is_registered(obj):
            self.pm.unregister(obj)
        info.hooks = []

    # -- what plugins register ---------------------------------------------------------------------
    @property
    def broken(self) -> list[PluginInfo]:
        """The plugins that failed to load or to register."""
        return [p for p in self.plugins.values() if p.error]

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` ("architecture", "dataset", "exporter", "callback"), built once."""
        if kind not in self._registries:
            hook = KINDS[kind][0]
            collected = []
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                info = self.plugins[impl.plugin_name]
                made = []

                def register(name, func, summary="", _info=info, _made=made, **extra):
                    _made.append(make_entry(kind, _info, name, func, summary, **extra))

                try:
                    impl.function(register=register)
                except Exception as exc:
                    info.error = f"{hook}: {one_line(exc)}"
                    trace(f"{info.label()} {hook} failed: {info.error}")
                    continue
                trace(f"{info.label()} {hook}: {', '.join(e.name for e in made) or '(nothing)'}")
                collected.extend(made)
            registry = Registry(kind, self.broken)
            for entry in collected:
                registry.add(entry)
            self._registries[kind] = registry
        return self._registries[kind]


HOOKS = [spec[0] for spec in KINDS.values()] + ["register_commands"]


def _user_plugin(spec: str) -> tuple[PluginInfo, Callable[[], object]]:
    """PluginInfo and loader for a ``--plugin`` value: a ``.py`` file path or an importable module."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        path = Path(spec).expanduser().resolve()
        info = PluginInfo(path.stem, "path", str(path))

        def load():
            if not path.is_file():
                raise FileNotFoundError(f"no such plugin file: {path}")
            _add_plugin_folder(path.parent)
            module_name = f"kerastack_user_plugin_{path.stem}"
            mod_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[module_name] = module
            try:
                mod_spec.loader.exec_module(module)
            except BaseException as exc:
                sys.modules.pop(module_name, None)
                hidden = [n for n in _hidden_siblings(path.parent) if f"'{n}'" in str(exc) or f"'{n}." in str(exc)]
                if isinstance(exc, (ImportError, AttributeError)) and hidden:
                    raise type(exc)(
                        f"{exc} (the {hidden[0]!r} beside the plugin is not the one imported: the standard "
                        "library, kerastack or an installed package has that name and comes first; rename it)"
                    ) from exc
                raise
            return module

        return info, load
    return PluginInfo(spec, "module", spec), lambda: importlib.import_module(spec)


def _add_plugin_folder(folder: Path) -> None:
    """Put ``folder`` (a ``--plugin`` file's) on ``sys.path``, as Python does with a script's folder.

    The plugin then imports the modules beside it (its own layers, constraints, helpers) without
    PYTHONPATH, in every process that loads it: training, the export and backend child processes
    and ``--resume`` all load the plugin again from the absolute path recorded in ``run.json``.
    The folder goes *last*, unlike a script's: a module there named like one of the standard
    library, of kerastack (``core``, ``plugins``, ``tflite``) or of an installed package must not
    replace it for kerastack, Keras or the backends, which import lazily long after the plugin
    loaded. Such a module is not importable from the plugin; a failed import says so.
    """
    folder = str(folder)
    if folder not in sys.path:
        sys.path.append(folder)


def _hidden_siblings(folder: Path) -> list[str]:
    """The modules beside a plugin file that an earlier ``sys.path`` entry hides from it."""
    hidden = []
    for module in pkgutil.iter_modules([str(folder)]):
        try:
            spec = importlib.util.find_spec(module.name)
        except (ImportError, ValueError):
            continue
        origin = Path(spec.origin).parent if spec and spec.origin not in (None, "built-in", "frozen") else None
        if spec is not None and origin != folder and (origin is None or origin.parent != folder):
            hidden.append(module.name)
    return sorted(hidden)


_default_hosts = {}


def all_plugin_hosts() -> list[PluginHost]:
    """The hosts this process built, the latest first."""
    return list(reversed(_default_hosts.values()))


def get_plugin_host(extra: Iterable[str] = ()) -> PluginHost:
    """The process-wide host for these ``--plugin`` values (built on first use)."""
    key = tuple(extra)
    if key not in _default_hosts:
        _default_hosts[key] = PluginHost(key)
    return _default_hosts[key]
