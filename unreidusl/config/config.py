"""yacs ``CfgNode`` with ``_BASE_`` inheritance and helpful errors for unknown keys/types."""
import copy
import difflib
import os
from typing import Any, Dict, Iterable, List

import yaml
from yacs.config import CfgNode as _YacsCfgNode

from .compat import translate_legacy_keys

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_yaml_with_base"]

BASE_KEY = "_BASE_"


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


def _flatten(d: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for k, v in d.items():
        full = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, full + "."))
        else:
            out[full] = v
    return out


def _merge_dicts(base: Dict[str, Any], update: Dict[str, Any]) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge_dicts(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_yaml_with_base(path: str, _seen: Iterable[str] = ()) -> Dict[str, Any]:
    """Load a YAML file; ``_BASE_`` (a path relative to the file, or a list of them) is loaded first."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"Config file not found: {path}")
    if path in _seen:
        raise ConfigError(f"Circular _BASE_ inheritance: {' -> '.join(list(_seen) + [path])}")
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"Cannot parse YAML config {path}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must contain a mapping at the top level")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    merged: Dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else list(bases):
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(path), base)
        merged = _merge_dicts(merged, load_yaml_with_base(base, tuple(_seen) + (path,)))
    return _merge_dicts(merged, data)


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """Return ``value`` converted to the type of ``default`` or raise a ConfigError naming the key."""
    if isinstance(value, str) and not isinstance(default, str):
        value = _YacsCfgNode._decode_cfg_value(value)
    if default is None or value is None or type(default) is type(value):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return type(default)(value)
    if isinstance(default, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(
        f"Config key {key} (from {source}) expects a value of type {type(default).__name__} "
        f"like {default!r}, but got {value!r} of type {type(value).__name__}."
    )


class CfgNode(_YacsCfgNode):
    """A yacs CfgNode whose merges validate every key first and explain mistakes."""

    def all_keys(self) -> List[str]:
        return sorted(_flatten(_to_dict(self)))

    def _unknown_key_error(self, key: str, source: str) -> ConfigError:
        keys = self.all_keys()
        close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
        if not close:
            leaf = key.rsplit(".", 1)[-1]
            close = [k for k in keys if k.rsplit(".", 1)[-1] == leaf][:3]
        hint = f" Closest valid keys: {', '.join(close)}." if close else ""
        return ConfigError(
            f"Unknown config key '{key}' (from {source}).{hint} "
            f"A plugin can add keys with an `add_config(cfg)` function; see README 'Plugins'."
        )

    def _checked_update(self, data: Dict[str, Any], source: str) -> None:
        """Validate and set every leaf of ``data``; AuxUSLReID's key names are translated first."""
        defaults = _flatten(_to_dict(self))
        groups = {k.rsplit(".", 1)[0] for k in defaults if "." in k}
        flat = _flatten(data)
        legacy, _ = translate_legacy_keys({k: v for k, v in flat.items() if k not in defaults}, source,
                                          (self.MODEL.LOSSES.NAME, self.MODEL.LOSSES.WEIGHTS))
        # a key in unreidusl's own name wins over a translated AuxUSLReID key that sets the same one
        # (e.g. SOLVER.SCHED over OPTIM.SCHED), wherever each comes from in a _BASE_ chain
        flat = {**legacy, **{k: v for k, v in flat.items() if k in defaults}}
        for key, value in flat.items():
            if key in defaults:
                self._set(key, _coerce(key, defaults[key], value, source))
            elif key in groups and value is None:
                continue
            else:
                raise self._unknown_key_error(key, source)

    def _set(self, key: str, value: Any) -> None:
        node = self
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if node.is_frozen():
            raise ConfigError(f"Cannot set {key}: the config is frozen")
        node[leaf] = value

    def merge_from_file(self, cfg_filename: str) -> None:  # noqa: D401 (yacs API)
        """Merge a YAML file (with ``_BASE_`` inheritance) into this config."""
        self._checked_update(load_yaml_with_base(cfg_filename), cfg_filename)

    def merge_from_dict(self, data: Dict[str, Any], source: str = "dict") -> None:
        self._checked_update(data, source)

    def merge_from_list(self, cfg_list: List[str]) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` command-line overrides."""
        if len(cfg_list) % 2:
            raise ConfigError(
                f"Command-line overrides must be KEY VALUE pairs; got an odd number: {cfg_list}"
            )
        data: Dict[str, Any] = {}
        for key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        self._checked_update(data, "command line")

    def dump(self, **kwargs) -> str:
        return yaml.safe_dump(_to_dict(self), sort_keys=False, **kwargs)


def _to_dict(node: Any) -> Any:
    if isinstance(node, _YacsCfgNode):
        return {k: _to_dict(v) for k, v in node.items()}
    return node


def get_cfg() -> CfgNode:
    """A fresh copy of the default config (``unreidusl/config/defaults.py``)."""
    from .defaults import _C

    return _C.clone()
