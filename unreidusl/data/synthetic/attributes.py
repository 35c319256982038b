"""Identity appearance attributes drawn from small, skewed palettes.

Single attributes collide often (many people wear black trousers), combinations rarely do.  The
``id_color_jitter`` knob perturbs every palette colour a little per identity.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

RGB = Tuple[int, int, int]

# (name, rgb, weight): weights skew towards common clothing colours -> more collisions.
UPPER_PALETTE: List[Tuple[str, RGB, float]] = [
    ("black", (32, 32, 34), 3.0), ("white", (232, 232, 228), 2.5), ("grey", (125, 125, 128), 2.0),
    ("navy", (30, 40, 85), 1.5), ("blue", (45, 85, 190), 1.5), ("red", (195, 35, 40), 1.2),
    ("green", (45, 135, 65), 1.0), ("yellow", (228, 198, 45), 0.8), ("pink", (228, 135, 170), 0.8),
    ("purple", (115, 55, 150), 0.7), ("orange", (232, 120, 35), 0.7), ("brown", (115, 75, 45), 1.0),
    ("beige", (205, 185, 145), 1.0), ("lightblue", (140, 185, 228), 0.9),
    ("darkgreen", (35, 70, 45), 0.7), ("maroon", (105, 25, 35), 0.7),
]
LOWER_PALETTE: List[Tuple[str, RGB, float]] = [
    ("black", (30, 30, 33), 3.0), ("denim", (62, 88, 138), 2.5), ("navy", (30, 38, 75), 1.5),
    ("grey", (110, 110, 115), 1.5), ("khaki", (175, 155, 110), 1.0), ("brown", (100, 70, 45), 0.8),
    ("white", (225, 225, 220), 0.6), ("olive", (85, 90, 50), 0.6), ("beige", (200, 182, 150), 0.6),
    ("red", (170, 40, 45), 0.4),
]
SHOE_PALETTE: List[Tuple[str, RGB, float]] = [
    ("black", (25, 25, 25), 3.0), ("white", (235, 235, 235), 2.0), ("brown", (95, 60, 35), 1.0),
    ("grey", (120, 120, 120), 1.0), ("red", (180, 40, 40), 0.4), ("blue", (50, 70, 160), 0.4),
]
HAIR_PALETTE: List[Tuple[str, RGB, float]] = [
    ("black", (25, 22, 20), 3.0), ("darkbrown", (60, 40, 25), 2.0), ("brown", (110, 75, 45), 1.0),
    ("blonde", (205, 175, 110), 0.7), ("grey", (160, 160, 160), 0.5), ("auburn", (140, 60, 35), 0.4),
]
SKIN_PALETTE: List[Tuple[str, RGB, float]] = [
    ("light", (238, 204, 180), 1.0), ("medium", (212, 168, 132), 1.0), ("tan", (170, 122, 88), 0.8),
    ("dark", (105, 72, 50), 0.6),
]
BAG_PALETTE: List[Tuple[str, RGB, float]] = [
    ("black", (30, 30, 30), 3.0), ("brown", (110, 70, 40), 1.0), ("grey", (120, 120, 125), 1.0),
    ("red", (175, 40, 45), 0.5), ("blue", (45, 70, 160), 0.5), ("beige", (200, 180, 140), 0.6),
]
PATTERNS = [("solid", 3.0), ("hstripes", 1.0), ("checks", 0.7), ("logo", 1.0), ("vsplit", 0.5)]
BAG_TYPES = [("none", 2.0), ("backpack", 1.2), ("handbag", 0.6), ("shoulder", 0.6)]
LOWER_TYPES = [("trousers", 4.0), ("shorts", 1.0), ("skirt", 0.6)]

VEHICLE_COLORS: List[Tuple[str, RGB, float]] = [
    ("white", (230, 230, 228), 3.0), ("black", (28, 28, 30), 2.5), ("silver", (185, 188, 192), 2.0),
    ("grey", (110, 112, 116), 1.5), ("red", (180, 30, 35), 1.0), ("blue", (35, 70, 160), 1.0),
    ("darkblue", (25, 35, 80), 0.6), ("yellow", (225, 195, 40), 0.4), ("green", (40, 110, 60), 0.4),
    ("brown", (105, 70, 45), 0.4), ("orange", (225, 115, 30), 0.3), ("beige", (200, 185, 150), 0.4),
]
VEHICLE_TYPES = [("sedan", 3.0), ("suv", 2.0), ("hatchback", 1.5), ("van", 1.0), ("truck", 0.8),
                 ("bus", 0.4)]


def _pick(rng: np.random.Generator, items: Sequence[tuple], limit: int = 0,
          skew: float = 1.0) -> tuple:
    """Weighted choice among the first ``limit`` items (all if 0); returns the item tuple.

    ``skew`` is an exponent on the weights: 1 keeps the palette's skew, 0 is uniform."""
    items = list(items[:limit] if limit else items)
    w = np.array([it[-1] for it in items], dtype=float) ** skew
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _jitter(rng: np.random.Generator, rgb: Sequence[int], amount: float) -> List[int]:
    """Perturb a palette colour multiplicatively (brightness) and additively (hue drift)."""
    base = np.asarray(rgb, dtype=float)
    scale = 1.0 + amount * rng.normal()
    shift = 255.0 * amount * 0.5 * rng.normal(size=3)
    return [int(v) for v in np.clip(base * scale + shift, 0, 255).round()]


def person_attributes(rng: np.random.Generator, cfg) -> Dict[str, Any]:
    """Sample one person's appearance (plain JSON-able values)."""
    j, k = cfg.id_color_jitter, cfg.palette_skew
    upper = _pick(rng, UPPER_PALETTE, cfg.num_upper_colors, k)
    pattern = _pick(rng, PATTERNS)[0]
    second = upper
    while second[0] == upper[0]:
        second = _pick(rng, UPPER_PALETTE, cfg.num_upper_colors, k)
    lower = _pick(rng, LOWER_PALETTE, cfg.num_lower_colors, k)
    bag_type = _pick(rng, BAG_TYPES)[0]
    return {
        "upper": upper[0], "upper_rgb": _jitter(rng, upper[1], j),
        "pattern": pattern, "upper2_rgb": _jitter(rng, second[1], j),
        "long_sleeves": bool(rng.random() < 0.55),
        "lower": lower[0], "lower_rgb": _jitter(rng, lower[1], j),
        "lower_type": _pick(rng, LOWER_TYPES)[0],
        "shoes_rgb": _jitter(rng, _pick(rng, SHOE_PALETTE, 0, k)[1], j),
        "hair_rgb": _jitter(rng, _pick(rng, HAIR_PALETTE, 0, k)[1], j),
        "skin_rgb": _jitter(rng, _pick(rng, SKIN_PALETTE)[1], j * 0.5),
        "long_hair": bool(rng.random() < 0.35),
        "cap_rgb": (_jitter(rng, _pick(rng, UPPER_PALETTE)[1], j) if rng.random() < 0.12 else None),
        "bag": bag_type, "bag_rgb": _jitter(rng, _pick(rng, BAG_PALETTE, 0, k)[1], j),
        "bag_left": bool(rng.random() < 0.5),
        "height": float(rng.uniform(0.86, 1.0)), "width": float(rng.uniform(0.82, 1.18)),
    }


def vehicle_attributes(rng: np.random.Generator, cfg) -> Dict[str, Any]:
    """Sample one vehicle's appearance (plain JSON-able values)."""
    j = cfg.id_color_jitter
    body = _pick(rng, VEHICLE_COLORS, cfg.num_upper_colors, cfg.palette_skew)
    stripe = None
    if rng.random() < 0.2:
        other = body
        while other[0] == body[0]:
            other = _pick(rng, VEHICLE_COLORS)
        stripe = _jitter(rng, other[1], j)
    return {
        "body": body[0], "body_rgb": _jitter(rng, body[1], j),
        "type": _pick(rng, VEHICLE_TYPES)[0],
        "roof_rack": bool(rng.random() < 0.18),
        "stripe_rgb": stripe,
        "window_rgb": _jitter(rng, (45, 55, 65), 0.15),
        "rim_rgb": _jitter(rng, (150, 150, 155) if rng.random() < 0.6 else (40, 40, 40), j),
        "sunroof": bool(rng.random() < 0.15),
        "length": float(rng.uniform(0.9, 1.0)), "height": float(rng.uniform(0.9, 1.05)),
    }
