"""Procedural person drawing with Pillow's ImageDraw (front, back and side views, walking).

Coordinates are floats in pixels; ``h`` is the person's height, ``cx`` the body centre line and
``foot`` the y of the soles.  The walking ``phase`` (radians) swings arms and legs.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence

from PIL import ImageDraw


def _c(rgb: Sequence[int]) -> tuple:
    return tuple(int(v) for v in rgb)


def _limb(d: ImageDraw.ImageDraw, x0: float, y0: float, length: float, angle: float,
          width: float, fill) -> tuple:
    """Draw a straight limb from (x0, y0) hanging down, rotated by ``angle``; return its end."""
    x1, y1 = x0 + length * math.sin(angle), y0 + length * math.cos(angle)
    d.line([(x0, y0), (x1, y1)], fill=fill, width=max(1, int(round(width))))
    return x1, y1


def _torso(d, a: Dict[str, Any], view: str, x0, y0, x1, y1, h) -> None:
    """Upper-body garment with its pattern, clipped to the rectangle."""
    c1, c2 = _c(a["upper_rgb"]), _c(a["upper2_rgb"])
    d.rectangle([x0, y0, x1, y1], fill=c1)
    pat = a["pattern"]
    if pat == "hstripes":
        step = max(2.0, 0.045 * h)
        y = y0 + step * 0.5
        while y < y1:
            d.rectangle([x0, y, x1, min(y1, y + step * 0.5)], fill=c2)
            y += step
    elif pat == "checks":
        step = max(2.0, 0.06 * h)
        row, y = 0, y0
        while y < y1:
            col, x = row % 2, x0
            while x < x1:
                if col % 2 == 0:
                    d.rectangle([x, y, min(x1, x + step), min(y1, y + step)], fill=c2)
                x += step
                col += 1
            y += step
            row += 1
    elif pat == "logo" and view == "front":
        r = 0.07 * h * 0.5 + 0.5 * (x1 - x0) * 0.18
        cx, cy = (x0 + x1) / 2, y0 + 0.35 * (y1 - y0)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c2)
    elif pat == "vsplit":
        mid = (x0 + x1) / 2
        if view in ("front", "right"):
            d.rectangle([mid, y0, x1, y1], fill=c2)
        else:
            d.rectangle([x0, y0, mid, y1], fill=c2)


def _legs(d, a, view, cx, hip, foot, h, hip_w, phase) -> None:
    lower, skin, shoe = _c(a["lower_rgb"]), _c(a["skin_rgb"]), _c(a["shoes_rgb"])
    leg_len = foot - hip - 0.03 * h
    leg_w = 0.10 * h * (0.8 + 0.2 * a["width"])
    cover = {"trousers": 1.0, "shorts": 0.4, "skirt": 0.45}[a["lower_type"]]
    side = view in ("left", "right")
    for k, sgn in enumerate((-1.0, 1.0)):
        if side:
            ang = 0.42 * math.sin(phase) * sgn
            x0 = cx
        else:
            ang = 0.05 * sgn
            x0 = cx + sgn * hip_w * 0.25
        lift = 0.0 if side else 0.02 * h * max(0.0, math.sin(phase) * sgn)
        length = leg_len - lift
        if a["lower_type"] == "skirt":
            _limb(d, x0, hip, length, ang, leg_w * 0.7, skin)
        else:
            mx, my = _limb(d, x0, hip, length, ang, leg_w, skin if cover < 1.0 else lower)
            if cover < 1.0:
                _limb(d, x0, hip, length * cover, ang, leg_w * 1.05, lower)
        ex, ey = x0 + length * math.sin(ang), hip + length * math.cos(ang)
        sw = 0.06 * h if side else 0.045 * h
        dx = sw * (0.6 if view == "right" else -0.6 if view == "left" else 0.0)
        d.rectangle([ex - sw * 0.6 + dx * 0.5, ey - 0.01 * h, ex + sw * 0.6 + dx * 0.5,
                     ey + 0.03 * h], fill=shoe)
    if a["lower_type"] == "skirt":
        top_w, bot_w = hip_w * 0.5, hip_w * 0.8 if not side else hip_w * 0.6
        y2 = hip + leg_len * 0.45
        d.polygon([(cx - top_w, hip), (cx + top_w, hip), (cx + bot_w, y2), (cx - bot_w, y2)],
                  fill=lower)
    else:
        d.rectangle([cx - hip_w * 0.5, hip - 0.01 * h, cx + hip_w * 0.5, hip + 0.04 * h],
                    fill=lower)


def _head(d, a, view, cx, top, h) -> None:
    skin, hair = _c(a["skin_rgb"]), _c(a["hair_rgb"])
    rx, ry = 0.055 * h, 0.068 * h
    cy = top + ry
    box = [cx - rx, cy - ry, cx + rx, cy + ry]
    if view == "back":
        d.ellipse(box, fill=hair)
    else:
        d.ellipse(box, fill=skin)
        if view == "front":
            d.chord(box, 180, 360, fill=hair)
            d.rectangle([cx - rx, cy - ry * 0.5, cx + rx, cy - ry * 0.2], fill=hair)
        else:  # side: hair on the back half
            start = 270 if view == "left" else 90
            d.pieslice(box, start - 5, start + 185, fill=hair)
            d.chord(box, 180, 360, fill=hair)
    if a["long_hair"]:
        w = rx * (1.0 if view != "front" else 0.35)
        if view == "front":
            d.rectangle([cx - rx, cy, cx - rx + w, cy + 1.7 * ry], fill=hair)
            d.rectangle([cx + rx - w, cy, cx + rx, cy + 1.7 * ry], fill=hair)
        else:
            off = 0.0 if view == "back" else (0.5 * rx if view == "left" else -0.5 * rx)
            d.rectangle([cx - w * 0.9 + off, cy, cx + w * 0.9 + off, cy + 1.8 * ry], fill=hair)
    if a["cap_rgb"] is not None:
        cap = _c(a["cap_rgb"])
        d.chord([cx - rx * 1.05, cy - ry * 1.08, cx + rx * 1.05, cy + ry * 0.5], 180, 360,
                fill=cap)
        if view in ("left", "right"):
            sgn = -1.0 if view == "left" else 1.0
            d.rectangle(sorted_box(cx, cx + sgn * rx * 1.7, cy - ry * 0.35, cy - ry * 0.15), fill=cap)


def sorted_box(x0, x1, y0, y1) -> list:
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def _bag(d, a, view, cx, shoulder, hip, h, torso_w, hand) -> None:
    if a["bag"] == "none":
        return
    col = _c(a["bag_rgb"])
    if a["bag"] == "backpack":
        if view == "back":
            d.rectangle([cx - torso_w * 0.38, shoulder + 0.03 * h, cx + torso_w * 0.38,
                         hip - 0.06 * h], fill=col)
        elif view == "front":
            for sgn in (-1.0, 1.0):
                x = cx + sgn * torso_w * 0.3
                d.line([(x, shoulder), (x, shoulder + 0.16 * h)], fill=col, width=max(1, int(0.02 * h)))
        else:
            sgn = 1.0 if view == "left" else -1.0  # bag sticks out behind the walker
            x0 = cx + sgn * torso_w * 0.5
            d.rectangle(sorted_box(x0, x0 + sgn * 0.07 * h, shoulder + 0.03 * h, hip - 0.08 * h),
                        fill=col)
    elif a["bag"] == "handbag":
        hx, hy = hand
        d.rectangle([hx - 0.04 * h, hy - 0.01 * h, hx + 0.04 * h, hy + 0.07 * h], fill=col)
    else:  # shoulder bag: strap across the chest and a bag at the hip
        sgn = 1.0 if a["bag_left"] else -1.0
        if view != "back":
            d.line([(cx - sgn * torso_w * 0.4, shoulder), (cx + sgn * torso_w * 0.45, hip - 0.05 * h)],
                   fill=col, width=max(1, int(0.018 * h)))
        bx = cx + sgn * torso_w * 0.5
        d.rectangle(sorted_box(bx - 0.035 * h, bx + 0.045 * h, hip - 0.07 * h, hip + 0.02 * h),
                    fill=col)


def draw_person(d: ImageDraw.ImageDraw, a: Dict[str, Any], view: str, cx: float, foot: float,
                h: float, phase: float) -> None:
    """Draw a walking person of height ``h`` standing with soles at ``foot``."""
    h = h * a["height"]
    top = foot - h
    side = view in ("left", "right")
    torso_w = 0.31 * h * a["width"] * (0.62 if side else 1.0)
    hip_w = 0.25 * h * a["width"] * (0.6 if side else 1.0)
    shoulder, hip = top + 0.16 * h, top + 0.50 * h
    skin = _c(a["skin_rgb"])
    sleeve = _c(a["upper_rgb"]) if a["long_sleeves"] else skin
    arm_len, arm_w = 0.31 * h, 0.075 * h

    if view == "front" and a["bag"] == "backpack":  # pack visible behind the shoulders
        col = _c(a["bag_rgb"])
        d.rectangle([cx - torso_w * 0.6, shoulder, cx + torso_w * 0.6, shoulder + 0.08 * h], fill=col)
    _legs(d, a, view, cx, hip, foot, h, hip_w, phase)
    if side:  # far arm behind the body
        _limb(d, cx, shoulder + 0.02 * h, arm_len, -0.5 * math.sin(phase), arm_w, sleeve)
    _torso(d, a, view, cx - torso_w / 2, shoulder, cx + torso_w / 2, hip + 0.02 * h, h)
    d.rectangle([cx - 0.025 * h, shoulder - 0.03 * h, cx + 0.025 * h, shoulder], fill=skin)
    hand = (cx, hip)
    if side:
        hand = _limb(d, cx, shoulder + 0.02 * h, arm_len, 0.5 * math.sin(phase), arm_w, sleeve)
    else:
        for sgn in (-1.0, 1.0):
            swing = 0.06 * sgn + 0.05 * math.sin(phase) * sgn
            end = _limb(d, cx + sgn * (torso_w / 2 + arm_w * 0.3), shoulder + 0.02 * h, arm_len,
                        swing, arm_w, sleeve)
            if (sgn < 0) == a["bag_left"]:
                hand = end
    if a["long_sleeves"]:  # a skin-coloured hand below the sleeve
        hx, hy = hand
        d.ellipse([hx - arm_w * 0.5, hy - arm_w * 0.5, hx + arm_w * 0.5, hy + arm_w * 0.5], fill=skin)
    _bag(d, a, view, cx, shoulder, hip, h, torso_w, hand)
    _head(d, a, view, cx, top, h)
