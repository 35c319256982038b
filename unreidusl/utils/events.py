"""Scalar metrics of the running job (a small cousin of detectron2's EventStorage)."""
from collections import defaultdict
from typing import Dict, List, Tuple


class EventStorage:
    """Latest value and history of every scalar, tagged with the global iteration."""

    def __init__(self) -> None:
        self.iter = 0
        self.epoch = 0
        self._latest: Dict[str, Tuple[float, int]] = {}
        self._history: Dict[str, List[Tuple[int, float]]] = defaultdict(list)

    def put_scalar(self, name: str, value: float) -> None:
        value = float(value)
        self._latest[name] = (value, self.iter)
        self._history[name].append((self.iter, value))

    def put_scalars(self, **kwargs: float) -> None:
        for k, v in kwargs.items():
            self.put_scalar(k, v)

    def latest(self) -> Dict[str, Tuple[float, int]]:
        return dict(self._latest)

    def history(self, name: str) -> List[Tuple[int, float]]:
        return list(self._history.get(name, []))

    def window_mean(self, name: str, size: int) -> float:
        values = [v for _, v in self._history.get(name, [])[-size:]]
        return sum(values) / len(values) if values else float("nan")
