"""A tiny name -> object registry, filled by decorators at definition sites."""
import difflib
from typing import Callable, Dict, Iterator, Optional, Tuple

__all__ = ["Registry"]


class Registry:
    """Maps names to classes or functions.

    Usage::

        BACKBONE_REGISTRY = Registry("BACKBONE")

        @BACKBONE_REGISTRY.register()
        class MyBackbone(nn.Module): ...

        BACKBONE_REGISTRY.get("MyBackbone")
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: Dict[str, object] = {}

    @property
    def name(self) -> str:
        return self._name

    def _do_register(self, name: str, obj: object) -> None:
        if name in self._obj_map:
            raise KeyError(
                f"An object named '{name}' is already registered in the {self._name} registry "
                f"(by {getattr(self._obj_map[name], '__module__', '?')}). Pick another name."
            )
        self._obj_map[name] = obj

    def register(self, obj: Optional[object] = None, name: Optional[str] = None):
        """Register ``obj`` under ``name`` (default: ``obj.__name__``); usable as a decorator."""
        if obj is None:
            def deco(func_or_class: Callable) -> Callable:
                self._do_register(name or func_or_class.__name__, func_or_class)
                return func_or_class
            return deco
        self._do_register(name or obj.__name__, obj)
        return obj

    def get(self, name: str):
        if name not in self._obj_map:
            close = difflib.get_close_matches(name, list(self._obj_map), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(
                f"No object named '{name}' in the {self._name} registry.{hint} "
                f"Registered: {sorted(self._obj_map)}. A plugin module listed in cfg.PLUGINS "
                f"can register more."
            )
        return self._obj_map[name]

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[Tuple[str, object]]:
        return iter(self._obj_map.items())

    def __len__(self) -> int:
        return len(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry(name={self._name!r}, items={sorted(self._obj_map)})"
