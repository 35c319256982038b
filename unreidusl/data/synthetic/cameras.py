"""Camera network: positions on a 2-D map, connections with transit times, per-camera styles."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .seeding import rng as make_rng

VIEWS = ("front", "back", "left", "right")

BACKGROUND_COLORS = [
    (150, 150, 145), (120, 110, 95), (90, 95, 100), (170, 160, 140), (80, 85, 70), (140, 130, 120),
    (105, 100, 110), (160, 150, 120), (70, 72, 75), (185, 180, 170), (110, 120, 105),
    (130, 105, 90),
]
BACKGROUND_PATTERNS = ("tiles", "stripes", "bricks", "gradient", "blobs")


@dataclass(frozen=True)
class CameraStyle:
    """How a camera sees the world (colour pipeline, optics, scene)."""

    gains: Tuple[float, float, float]  # white balance, multiplies linear RGB
    hue_deg: float  # rotation of chroma around the grey axis
    saturation: float
    exposure: float
    gamma: float
    contrast: float
    blur: float  # Gaussian radius in pixels
    noise: float  # sensor noise sigma, in [0, 1] intensity units
    resolution: float  # down-scale factor before scaling back up (1 = full resolution)
    light_grad: float  # vertical illumination gradient
    view: str  # dominant viewpoint of people/vehicles in this camera
    person_scale: float  # fraction of the box height the subject occupies
    bg_colors: Tuple[Tuple[int, int, int], ...] = field(default_factory=tuple)
    bg_pattern: str = "tiles"


@dataclass(frozen=True)
class Camera:
    index: int  # 1-based camera id as written in file names
    pos: Tuple[float, float]
    style: CameraStyle


def _style(seed: int, cam: int, view: str, cfg, strata: np.ndarray) -> CameraStyle:
    """Draw one camera's style; ``cfg.color_cast``, ``cfg.exposure_var`` and ``cfg.optics``
    (each times ``cfg.style_strength``) scale the chromatic, tonal and optical parts.

    ``strata`` holds three numbers in [0, 1) spread evenly over the cameras (colour temperature,
    exposure, resolution), so every seed gets a comparable range of camera looks."""
    r = make_rng(seed, "camstyle", cam)
    c = cfg.color_cast * cfg.style_strength
    e = cfg.exposure_var * cfg.style_strength
    o = cfg.optics * cfg.style_strength
    temp = 2.0 * strata[0] - 1.0
    gains = (1.0 + 0.32 * c * temp + 0.06 * c * r.normal(),
             1.0 + 0.10 * c * r.normal(),
             1.0 - 0.32 * c * temp + 0.06 * c * r.normal())
    n_bg = int(r.integers(3, 6))
    bg_idx = r.choice(len(BACKGROUND_COLORS), size=n_bg, replace=False)
    return CameraStyle(
        gains=tuple(float(max(0.3, g)) for g in gains),
        hue_deg=float(r.normal(0.0, 14.0 * c)),
        saturation=float(max(0.2, r.uniform(1.0 - 0.45 * c, 1.0 + 0.25 * c))),
        exposure=float(np.exp((-0.45 + 0.8 * strata[1]) * e)),
        gamma=float(np.exp(r.normal(0.0, 0.18 * e))),
        contrast=float(max(0.3, r.uniform(1.0 - 0.35 * e, 1.0 + 0.2 * e))),
        blur=float(r.uniform(0.0, 1.1) * o),
        noise=float(r.uniform(0.01, 0.045) * o),
        resolution=float(1.0 - (1.0 - max(0.3, 1.0 - 0.6 * o)) * strata[2]),
        light_grad=float(r.uniform(-0.25, 0.25) * e),
        view=view,
        person_scale=float(r.uniform(0.85, 0.96)),
        bg_colors=tuple(BACKGROUND_COLORS[int(i)] for i in bg_idx),
        bg_pattern=BACKGROUND_PATTERNS[int(r.integers(len(BACKGROUND_PATTERNS)))],
    )


def _positions(r: np.random.Generator, n: int, size: Tuple[float, float]) -> np.ndarray:
    """Uniform positions with a soft minimum separation (rejection sampling)."""
    min_sep = 0.5 * np.sqrt(size[0] * size[1] / n)
    pts: List[np.ndarray] = []
    for _ in range(200 * n):
        p = r.uniform((0.0, 0.0), size)
        if all(np.hypot(*(p - q)) >= min_sep for q in pts):
            pts.append(p)
            if len(pts) == n:
                break
    while len(pts) < n:  # fall back: accept anything
        pts.append(r.uniform((0.0, 0.0), size))
    return np.array(pts)


def _edges(dist: np.ndarray, extra_ratio: float) -> List[Tuple[int, int]]:
    """Minimum spanning tree (always connected) plus the shortest share of the other pairs."""
    n = len(dist)
    in_tree = {0}
    edges = []
    while len(in_tree) < n:
        best = None
        for a in sorted(in_tree):
            for b in range(n):
                if b not in in_tree and (best is None or dist[a, b] < dist[best]):
                    best = (a, b)
        in_tree.add(best[1])
        edges.append(tuple(sorted(best)))
    tree = set(edges)
    others = sorted(((dist[a, b], a, b) for a in range(n) for b in range(a + 1, n)
                     if (a, b) not in tree))
    n_extra = int(round(extra_ratio * len(others)))
    edges += [(a, b) for _, a, b in others[:n_extra]]
    return sorted(edges)


@dataclass(frozen=True)
class CameraNetwork:
    """Cameras plus the transit-time model ``transit[(a, b)] = (mean_s, sigma)`` (1-based ids)."""

    cameras: Tuple[Camera, ...]
    transit: Dict[Tuple[int, int], Tuple[float, float]]

    def neighbours(self, cam: int) -> List[int]:
        return sorted(b for (a, b) in self.transit if a == cam)

    def camera(self, cam: int) -> Camera:
        return self.cameras[cam - 1]


def build_network(seed: int, cfg) -> CameraNetwork:
    """Place ``cfg.num_cameras`` cameras, connect them and give each a style."""
    r = make_rng(seed, "network")
    pos = _positions(r, cfg.num_cameras, cfg.map_size_m)
    dist = np.hypot(pos[:, None, 0] - pos[None, :, 0], pos[:, None, 1] - pos[None, :, 1])
    views = [VIEWS[i % 4] for i in range(cfg.num_cameras)]
    views = [views[int(i)] for i in r.permutation(cfg.num_cameras)]
    n = cfg.num_cameras
    strata = np.stack([(r.permutation(n) + r.uniform(size=n)) / n for _ in range(3)], axis=1)
    cams = tuple(Camera(i + 1, (float(pos[i, 0]), float(pos[i, 1])),
                        _style(seed, i + 1, views[i], cfg, strata[i]))
                 for i in range(n))
    transit: Dict[Tuple[int, int], Tuple[float, float]] = {}
    for a, b in _edges(dist, cfg.extra_edge_ratio):
        mean = cfg.transit_overhead_s + float(dist[a, b]) / cfg.speed_mps
        transit[(a + 1, b + 1)] = (mean, cfg.transit_spread)
        transit[(b + 1, a + 1)] = (mean, cfg.transit_spread)
    return CameraNetwork(cams, transit)
