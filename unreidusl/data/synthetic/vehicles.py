"""Procedural vehicle drawing (sedan/SUV/hatchback/van/truck/bus; front, back and side views)."""
from __future__ import annotations

from typing import Any, Dict

from PIL import ImageDraw

from .figures import _c, sorted_box

# total height / length in side view, and height of the lower body as a share of the total
_SHAPE = {"sedan": (0.30, 0.50), "hatchback": (0.34, 0.50), "suv": (0.40, 0.55),
          "van": (0.48, 0.6), "truck": (0.48, 0.45), "bus": (0.55, 0.55)}

_GLASS_DARK = (30, 35, 42)


def _side(d, a: Dict[str, Any], facing_left: bool, cx: float, bottom: float, length: float) -> None:
    body, glass = _c(a["body_rgb"]), _c(a["window_rgb"])
    kind = a["type"]
    tot_h, low_share = _SHAPE[kind]
    tot_h *= length * a["height"]
    x0, x1 = cx - length / 2, cx + length / 2
    r = 0.085 * length
    base = bottom - r * 0.6
    low_top = base - tot_h * low_share
    roof = base - tot_h

    def fx(t: float) -> float:  # position along the car, 0 = front bumper
        return x0 + t * length if facing_left else x1 - t * length

    d.rectangle(sorted_box(x0, x1, low_top, base), fill=body)
    if kind in ("van", "bus"):
        d.polygon([(fx(0.06), low_top), (fx(0.16), roof), (fx(1.0), roof), (fx(1.0), low_top)], fill=body)
        d.polygon([(fx(0.08), low_top - 0.05 * tot_h), (fx(0.16), roof + 0.08 * tot_h),
                   (fx(0.26), roof + 0.08 * tot_h), (fx(0.26), low_top - 0.05 * tot_h)], fill=glass)
        n_win = 5 if kind == "bus" else 2
        for k in range(n_win):
            t0 = 0.32 + k * (0.64 / n_win)
            d.rectangle(sorted_box(fx(t0), fx(t0 + 0.64 / n_win - 0.03), roof + 0.1 * tot_h,
                                   low_top - 0.06 * tot_h), fill=glass)
    elif kind == "truck":
        d.polygon([(fx(0.0), low_top), (fx(0.05), roof + 0.15 * tot_h), (fx(0.28), roof + 0.15 * tot_h),
                   (fx(0.28), low_top)], fill=body)
        d.rectangle(sorted_box(fx(0.07), fx(0.25), roof + 0.22 * tot_h, low_top - 0.05 * tot_h), fill=glass)
        d.rectangle(sorted_box(fx(0.31), fx(1.0), roof, low_top), fill=(215, 215, 210))
    else:
        rear = 0.92 if kind in ("hatchback", "suv") else 0.8
        d.polygon([(fx(0.22), low_top), (fx(0.36), roof), (fx(rear - 0.06), roof), (fx(rear), low_top)],
                  fill=body)
        d.polygon([(fx(0.26), low_top - 0.03 * tot_h), (fx(0.38), roof + 0.08 * tot_h),
                   (fx(rear - 0.08), roof + 0.08 * tot_h), (fx(rear - 0.03), low_top - 0.03 * tot_h)],
                  fill=glass)
        mid = (fx(0.26) + fx(rear - 0.03)) / 2
        d.line([(mid, roof + 0.06 * tot_h), (mid, low_top)], fill=body, width=max(1, int(0.02 * length)))
    if a["stripe_rgb"] is not None:
        sy = low_top + 0.35 * (base - low_top)
        d.rectangle(sorted_box(x0, x1, sy, sy + 0.18 * (base - low_top)), fill=_c(a["stripe_rgb"]))
    if a["roof_rack"]:
        ry = roof - 0.05 * tot_h
        d.rectangle(sorted_box(fx(0.38), fx(0.75), ry, ry + 0.025 * tot_h + 1), fill=(40, 40, 40))
    if a["sunroof"] and kind not in ("bus", "truck"):
        d.rectangle(sorted_box(fx(0.45), fx(0.6), roof - 1, roof + 1), fill=_GLASS_DARK)
    d.rectangle(sorted_box(fx(0.0), fx(0.03), low_top + 2, low_top + 0.3 * (base - low_top)),
                fill=(240, 230, 170))
    d.rectangle(sorted_box(fx(0.97), fx(1.0), low_top + 2, low_top + 0.3 * (base - low_top)),
                fill=(200, 30, 30))
    for t in (0.18, 0.8 if kind != "bus" else 0.85):
        wx = fx(t)
        d.ellipse([wx - r, bottom - 2 * r, wx + r, bottom], fill=(20, 20, 22))
        d.ellipse([wx - r * 0.5, bottom - 1.5 * r, wx + r * 0.5, bottom - 0.5 * r], fill=_c(a["rim_rgb"]))


def _frontback(d, a: Dict[str, Any], front: bool, cx: float, bottom: float, width: float) -> None:
    body, glass = _c(a["body_rgb"]), _c(a["window_rgb"])
    kind = a["type"]
    tot_h = width * {"sedan": 0.62, "hatchback": 0.7, "suv": 0.8, "van": 0.95, "truck": 0.95,
                     "bus": 1.05}[kind] * a["height"]
    w = width * a["length"]
    x0, x1 = cx - w / 2, cx + w / 2
    base = bottom - 0.05 * tot_h
    low_top = base - tot_h * (0.45 if kind not in ("van", "bus", "truck") else 0.4)
    roof = base - tot_h
    inset = 0.12 * w if kind in ("sedan", "hatchback", "suv") else 0.03 * w
    # wheels peeking out below the body
    for sx in (x0 + 0.06 * w, x1 - 0.2 * w):
        d.rectangle([sx, base - 0.05 * tot_h, sx + 0.14 * w, bottom], fill=(20, 20, 22))
    d.rectangle([x0, low_top, x1, base], fill=body)
    d.polygon([(x0 + 0.02 * w, low_top), (x0 + inset, roof), (x1 - inset, roof), (x1 - 0.02 * w, low_top)],
              fill=body)
    g_in = inset + 0.05 * w
    g_top = roof + (0.12 if front else 0.25) * (low_top - roof)
    d.polygon([(x0 + 0.08 * w, low_top - 0.04 * tot_h), (x0 + g_in, g_top), (x1 - g_in, g_top),
               (x1 - 0.08 * w, low_top - 0.04 * tot_h)], fill=glass)
    ly = low_top + 0.18 * (base - low_top)
    lh = 0.18 * (base - low_top)
    light = (245, 235, 180) if front else (200, 30, 30)
    d.rectangle([x0 + 0.04 * w, ly, x0 + 0.2 * w, ly + lh], fill=light)
    d.rectangle([x1 - 0.2 * w, ly, x1 - 0.04 * w, ly + lh], fill=light)
    if front:
        d.rectangle([cx - 0.22 * w, ly, cx + 0.22 * w, ly + lh * 1.4], fill=(35, 35, 38))
    d.rectangle([cx - 0.1 * w, base - 0.32 * (base - low_top), cx + 0.1 * w, base - 0.14 * (base - low_top)],
                fill=(225, 225, 215))
    if a["stripe_rgb"] is not None:
        sc = _c(a["stripe_rgb"])
        for sx in (cx - 0.09 * w, cx + 0.04 * w):
            d.rectangle([sx, roof, sx + 0.05 * w, low_top], fill=sc)
    if a["roof_rack"]:
        d.rectangle([x0 + inset, roof - 0.04 * tot_h, x1 - inset, roof - 0.015 * tot_h], fill=(40, 40, 40))


def draw_vehicle(d: ImageDraw.ImageDraw, a: Dict[str, Any], view: str, cx: float, bottom: float,
                 size: float) -> None:
    """Draw a vehicle whose extent (side length or front width) is about ``size`` pixels."""
    if view in ("left", "right"):
        _side(d, a, view == "left", cx, bottom, size)
    else:
        _frontback(d, a, view == "front", cx, bottom, size * 0.72)
