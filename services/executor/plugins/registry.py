"""Which plugins exist: the built-ins and every entry point of ``backstop.executor.plugins``.

The built-ins are listed here as well as in pyproject.toml, so they are there even when the
installed metadata is older than the checkout. An entry point that cannot be loaded (import
error, not a :class:`Plugin`) is listed with its error instead of breaking the executor; one
named like a plugin already found is reported as a conflict and not used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

from services.executor.plugins.api import (
    ENTRY_POINT_GROUP,
    Action,
    Plugin,
    PluginNotFound,
)

# name -> "module:Class"
BUILTINS = {
    "rsync": "services.executor.plugins.rsync:RsyncPlugin",
    "restic": "services.executor.plugins.restic:ResticPlugin",
    "postgres": "services.executor.plugins.postgres:PostgresPlugin",
    "command": "services.executor.plugins.command:CommandPlugin",
}
BUILTIN_DISTRIBUTION = "backstop"


@dataclass(frozen=True)
class PluginInfo:
    """A plugin found: where it comes from, and the plugin (None when it could not be loaded:
    ``error`` says why)."""

    name: str
    source: str  # "module:Class"
    distribution: str
    version: str
    plugin: Plugin | None = None
    error: str | None = None

    @property
    def actions(self) -> list[Action]:
        return list(self.plugin.actions) if self.plugin is not None else []

    def row(self) -> dict[str, object]:
        """The plugin as a listing's row (``backstop plugins list``)."""
        return {
            "plugin": self.name,
            "actions": [f"{self.name}.{a.name}" for a in self.actions],
            "distribution": self.distribution,
            "version": self.version,
            "source": self.source,
            "summary": self.plugin.summary if self.plugin is not None else "",
            "error": self.error,
        }


@dataclass
class Registry:
    """The plugins by name; looks up the plugin of an action (``rsync.sync``)."""

    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    def all(self) -> list[PluginInfo]:
        return sorted(self.plugins.values(), key=lambda info: info.name)

    def plugin(self, name: str) -> Plugin:
        info = self.plugins.get(name)
        if info is None:
            known = ", ".join(sorted(self.plugins)) or "none"
            raise PluginNotFound(f"no plugin named {name} (installed: {known})")
        if info.plugin is None:
            raise PluginNotFound(f"plugin {name} could not be loaded: {info.error}")
        return info.plugin

    def for_action(self, action: str) -> tuple[Plugin, Action]:
        """The plugin and declared action of ``plugin.action``."""
        name, dot, short = action.partition(".")
        if not dot or not short:
            raise PluginNotFound(f"action {action!r} is not of the form plugin.action "
                                 "(e.g. rsync.sync)")
        plugin = self.plugin(name)
        return plugin, plugin.action(short)


def _instantiate(source: str, loaded: object) -> Plugin:
    if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
        raise TypeError(f"{source} is not a subclass of {Plugin.__module__}.Plugin")
    plugin = loaded()
    if not getattr(plugin, "name", None):
        raise TypeError(f"{source} does not set a name")
    return plugin


def _builtin(name: str, source: str, version: str) -> PluginInfo:
    module, _, attr = source.partition(":")
    plugin = _instantiate(source, getattr(importlib.import_module(module), attr))
    return PluginInfo(name, source, BUILTIN_DISTRIBUTION, version, plugin)


def _from_entry_point(entry: EntryPoint) -> PluginInfo:
    dist = entry.dist
    distribution = dist.name if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    try:
        plugin = _instantiate(entry.value, entry.load())
        if plugin.name != entry.name:
            raise TypeError(f"{entry.value} is named {plugin.name!r}, its entry point "
                            f"{entry.name!r}")
    except Exception as exc:
        return PluginInfo(entry.name, entry.value, distribution, version,
                          error=f"{type(exc).__name__}: {exc}")
    return PluginInfo(entry.name, entry.value, distribution, version, plugin)


def _backstop_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(BUILTIN_DISTRIBUTION)
    except PackageNotFoundError:
        return "?"


def load(entries: Iterable[EntryPoint] | None = None) -> Registry:
    """The built-ins and the installed entry points (``entries`` replaces the installed ones,
    for tests)."""
    version = _backstop_version()
    registry = Registry({name: _builtin(name, source, version)
                         for name, source in BUILTINS.items()})
    found = entry_points(group=ENTRY_POINT_GROUP) if entries is None else entries
    for entry in found:
        if entry.name in BUILTINS and entry.value == BUILTINS[entry.name]:
            continue  # the built-in itself, registered by Backstop's own metadata
        info = _from_entry_point(entry)
        if entry.name in registry.plugins:
            taken = registry.plugins[entry.name]
            registry.plugins[f"{entry.name} ({info.distribution})"] = PluginInfo(
                entry.name, entry.value, info.distribution, info.version,
                error=f"name taken by {taken.source} from {taken.distribution}; not used")
            continue
        registry.plugins[entry.name] = info
    return registry
