"""Frame rendering: scene background, subject, occluders, camera style and JPEG encoding.

A frame is a pure function of ``(world.seed, tracklet, frame index)``: every random draw comes
from a stream keyed by those values, so frames can be rendered in any order or process.
"""
from __future__ import annotations

import io
import math
from typing import Dict, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .cameras import VIEWS, Camera
from .figures import draw_person
from .seeding import rng as make_rng
from .vehicles import draw_vehicle
from .world import Tracklet, World

_PAD = 12  # vertical slack of the background texture (camera shake / framing)


def _color_matrix(style, light: float, tint: np.ndarray) -> np.ndarray:
    """3x3 matrix: white balance, hue rotation and saturation about the grey axis, exposure."""
    p = np.full((3, 3), 1.0 / 3.0)
    q = np.eye(3) - p
    u = np.ones(3) / math.sqrt(3.0)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    th = math.radians(style.hue_deg)
    chroma = style.saturation * (math.cos(th) * q + math.sin(th) * k)
    gains = np.asarray(style.gains) * tint
    return (p + chroma) @ np.diag(gains) * (style.exposure * light)


def _zone(d, r, x0: int, x1: int, th: int, horizon: int, wall, alt, width: int) -> None:
    """One stretch of wall above the floor: colour, pattern and a few scene objects."""
    d.rectangle([x0, 0, x1, horizon], fill=wall)
    pat = ("plain", "stripes", "bricks", "blobs", "windows")[int(r.integers(5))]
    if pat == "stripes":
        step = int(r.integers(6, 20))
        for x in range(x0, x1, 2 * step):
            d.rectangle([x, 0, min(x1, x + step - 1), horizon], fill=alt)
    elif pat == "bricks":
        bh, bw = int(r.integers(4, 8)), int(r.integers(10, 18))
        line = tuple(int(v * 0.75) for v in wall)
        for row, y in enumerate(range(0, horizon, bh)):
            d.line([(x0, y), (x1, y)], fill=line)
            for x in range(x0 + (row % 2) * bw // 2, x1, bw):
                d.line([(x, y), (x, y + bh)], fill=line)
    elif pat == "blobs":
        for _ in range(max(1, (x1 - x0) // 12)):
            x, y, s = r.uniform(x0, x1), r.uniform(0, horizon), r.uniform(4, 14)
            d.ellipse([x - s, y - s, x + s, y + s], fill=alt)
    elif pat == "windows":
        ww, wh = r.uniform(6, 14), r.uniform(6, 16)
        for x in np.arange(x0 + 3, x1 - ww, ww * 1.8):
            for y in np.arange(3, horizon - wh, wh * 1.6):
                d.rectangle([x, y, x + ww, y + wh], fill=alt)
    for _ in range(int(r.integers(0, 3))):  # poles, doors, signs
        x = r.uniform(x0, x1)
        w = r.uniform(2, 0.3 * width)
        y0 = r.uniform(0, horizon * 0.8)
        y1 = r.uniform(y0 + 4, th)
        col = tuple(int(v) for v in np.clip(np.asarray(alt) * r.uniform(0.5, 1.2), 0, 255))
        d.rectangle([x, y0, x + w, y1], fill=col)


def background_texture(seed: int, cam: Camera, height: int, width: int,
                       strength: float = 1.0) -> np.ndarray:
    """The camera's scene as a uint8 array ``(height + _PAD, 6 * width, 3)``; wraps horizontally.

    The scene is a floor plus several wall zones, so backgrounds vary inside a camera;
    ``strength`` < 1 blends the scene towards neutral grey (less camera-specific background).
    """
    r = make_rng(seed, "background", cam.index)
    st = cam.style
    th, tw = height + _PAD, 6 * width
    cols = [tuple(int(v) for v in c) for c in st.bg_colors]
    img = Image.new("RGB", (tw, th), cols[0])
    d = ImageDraw.Draw(img)
    horizon = int(th * r.uniform(0.45, 0.75))
    n_zones = int(r.integers(3, 6))
    cuts = np.sort(r.choice(np.arange(width // 2, tw - width // 2), n_zones - 1, replace=False))
    edges = [0] + [int(c) for c in cuts] + [tw]
    for z in range(n_zones):
        wall = cols[int(r.integers(len(cols)))]
        alt = cols[int(r.integers(len(cols)))]
        _zone(d, r, edges[z], edges[z + 1], th, horizon, wall, alt, width)
    floor = cols[int(r.integers(len(cols)))]
    d.rectangle([0, horizon, tw, th], fill=floor)
    if st.bg_pattern in ("tiles", "bricks"):
        step = int(r.integers(7, 15))
        line = tuple(int(v * 0.8) for v in floor)
        for x in range(0, tw, step):
            d.line([(x, horizon), (x, th)], fill=line)
        for y in range(horizon, th, max(3, step // 2)):
            d.line([(0, y), (tw, y)], fill=line)
    arr = np.asarray(img, dtype=np.float32)
    if st.bg_pattern == "gradient":
        arr = arr * np.linspace(1.15, 0.8, th, dtype=np.float32)[:, None, None]
    yy, xx = np.mgrid[0:th, 0:tw].astype(np.float32)
    low = np.zeros((th, tw), np.float32)
    for _ in range(3):  # low-frequency shading, periodic in x so the texture wraps
        fx, fy = int(r.integers(1, 5)), r.uniform(0.5, 3.0)
        low += np.sin(2 * math.pi * (fx * xx / tw + fy * yy / th + r.uniform()))
    arr *= (1.0 + 0.05 * low)[..., None]
    arr = 128.0 + strength * (arr - 128.0)
    return np.clip(arr, 0, 255).astype(np.uint8)


class Renderer:
    """Renders frames of one world; caches camera backgrounds."""

    def __init__(self, world: World):
        self.world = world
        self.cfg = world.cfg
        self._bg: Dict[int, np.ndarray] = {}

    def _background(self, cam: int) -> np.ndarray:
        if cam not in self._bg:
            tex = background_texture(self.world.seed, self.world.network.camera(cam),
                                     self.cfg.height, self.cfg.width, self.cfg.background_strength)
            self._bg[cam] = np.concatenate([tex, tex], axis=1)  # so any window fits unwrapped
        return self._bg[cam]

    def tracklet_params(self, trk: Tracklet) -> dict:
        """Per-tracklet appearance: viewpoint, lighting, background motion, occluder, gait."""
        cfg, st = self.cfg, self.world.network.camera(trk.cam).style
        r = make_rng(self.world.seed, "trackparams", trk.tid)
        view = st.view if r.random() < cfg.view_consistency else VIEWS[int(r.integers(4))]
        p = {
            "view": view,
            "light": float(np.exp(r.normal(0.0, cfg.light_jitter))),
            "tint": 1.0 + r.normal(0.0, cfg.light_jitter * 0.3, size=3),
            "bg_x": int(r.integers(0, 6 * cfg.width)),
            "bg_y": int(r.integers(0, _PAD + 1)),
            "bg_vx": float(r.uniform(-2.0, 2.0)),
            "drift": float(r.uniform(-0.4, 0.4)),
            "phase": float(r.uniform(0, 2 * math.pi)),
            "phase_step": float(r.uniform(0.8, 1.4) * trk.stride / 5.0 * math.pi / 2),
            "occluder": None,
            "fragment": None,
        }
        if r.random() < cfg.occlusion_prob or trk.kind == "false":
            grey = r.uniform(30, 200)
            size = r.uniform(0.2, 0.45) * (0.6 if cfg.world == "vehicle" else 1.0)
            p["occluder"] = {  # a pole, something in front (bench, car) or a passer-by
                "type": ["pole", "bottom", "side"][int(r.integers(3))],
                "rgb": tuple(int(v) for v in np.clip(grey + r.normal(0, 35, size=3), 0, 255)),
                "size": float(size), "pos": float(r.uniform(0.0, 1.0)),
                "left": bool(r.random() < 0.5), "speed": float(r.uniform(-0.02, 0.02)),
            }
        if trk.kind == "junk":
            p["fragment"] = {"zoom": float(r.uniform(1.8, 2.8)), "shift_y": float(r.uniform(-0.6, 0.6)),
                             "shift_x": float(r.choice([-1, 1]) * r.uniform(0.3, 0.6))}
        return p

    def _occlude(self, d, occ: dict, i: int) -> None:
        h, w = self.cfg.height, self.cfg.width
        pos = occ["pos"] + occ["speed"] * i
        if occ["type"] == "pole":
            x = (pos % 1.0) * w
            d.rectangle([x, 0, x + occ["size"] * w * 0.5, h], fill=occ["rgb"])
        elif occ["type"] == "bottom":
            d.rectangle([0, h * (1 - occ["size"]), w, h], fill=occ["rgb"])
        else:
            ww = occ["size"] * w * 1.4
            x0 = -ww * 0.2 if occ["left"] else w - ww * 0.8
            d.ellipse([x0, h * 0.05, x0 + ww, h * 0.25], fill=occ["rgb"])
            d.rectangle([x0, h * 0.2, x0 + ww, h], fill=occ["rgb"])

    def render(self, trk: Tracklet, i: int, params: Optional[dict] = None) -> Image.Image:
        """Frame ``i`` (0-based) of ``trk`` as an RGB image of ``cfg.image_size``."""
        cfg = self.cfg
        h, w = cfg.height, cfg.width
        p = params or self.tracklet_params(trk)
        cam = self.world.network.camera(trk.cam)
        st = cam.style
        r = make_rng(self.world.seed, "frame", trk.tid, i)
        bg = self._background(trk.cam)
        x0 = int(round(p["bg_x"] + p["bg_vx"] * i)) % (bg.shape[1] // 2)
        img = Image.fromarray(np.ascontiguousarray(bg[p["bg_y"]:p["bg_y"] + h, x0:x0 + w]))
        d = ImageDraw.Draw(img)

        if trk.kind != "false":
            scale = float(np.exp(r.normal(0.0, cfg.scale_jitter)))
            dx = r.normal(0.0, cfg.translate_jitter) * w + p["drift"] * i
            dy = r.normal(0.0, 0.015) * h
            if r.random() < cfg.bad_crop_prob:  # a wrongly placed detector box
                mode = int(r.integers(3))
                if mode == 0:
                    dx += float(r.choice([-1, 1])) * r.uniform(0.3, 0.5) * w
                elif mode == 1:
                    dy += float(r.choice([-1, 1])) * r.uniform(0.15, 0.3) * h
                else:
                    scale *= r.uniform(1.35, 1.7)
            frag = p["fragment"]
            if frag is not None:
                scale *= frag["zoom"]
                dx += frag["shift_x"] * w
                dy += frag["shift_y"] * h * scale * 0.5
            attrs = self.world.identity(trk.uid).attrs
            phase = p["phase"] + p["phase_step"] * i
            if cfg.world == "vehicle":
                draw_vehicle(d, attrs, p["view"], w / 2 + dx, h * 0.96 + dy, w * 0.88 * scale)
            else:
                ph = h * st.person_scale * scale
                draw_person(d, attrs, p["view"], w / 2 + dx, (h + ph) / 2 + dy, ph, phase)
        if p["occluder"] is not None:
            self._occlude(d, p["occluder"], i)
        return self._camera(img, st, p, r)

    def _camera(self, img: Image.Image, st, p: dict, r: np.random.Generator) -> Image.Image:
        """Apply the camera pipeline: resolution loss, blur, colour, gradient, contrast, noise."""
        h, w = self.cfg.height, self.cfg.width
        if st.resolution < 0.97:
            small = (max(8, int(round(w * st.resolution))), max(8, int(round(h * st.resolution))))
            img = img.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
        if st.blur > 0.2:
            img = img.filter(ImageFilter.GaussianBlur(st.blur))
        x = np.asarray(img, dtype=np.float32) * (1.0 / 255.0)
        m = _color_matrix(st, p["light"], p["tint"]).astype(np.float32)
        # x @ m.T without BLAS (safe in forked workers, identical on every machine)
        x = x[..., 0:1] * m[:, 0] + x[..., 1:2] * m[:, 1] + x[..., 2:3] * m[:, 2]
        grad = 1.0 + st.light_grad * np.linspace(-0.5, 0.5, h, dtype=np.float32)
        x *= grad[:, None, None]
        x = (x - 0.5) * st.contrast + 0.5
        np.clip(x, 0.0, 1.0, out=x)
        x **= st.gamma
        x += r.normal(0.0, st.noise, size=x.shape).astype(np.float32)
        np.clip(x, 0.0, 1.0, out=x)
        return Image.fromarray((x * 255.0 + 0.5).astype(np.uint8))

    def encode(self, img: Image.Image) -> bytes:
        """Deterministic baseline JPEG bytes (fixed quality, no metadata)."""
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=self.cfg.jpeg_quality, optimize=False,
                 progressive=False, subsampling=2)
        return buf.getvalue()
