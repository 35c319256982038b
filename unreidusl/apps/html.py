"""Self-contained HTML pages (they open from the disk in any browser, no server) and Pillow contact
sheets for the applications.

Images are referenced by a relative link from the page's folder (``img_src``), or embedded as
base64 JPEG thumbnails (``embed=True``: one file to mail around). Colours are the rank-list ones of
``evaluation/visualize.py``: blue query, green true match, red false match, grey junk / unknown.
"""
from __future__ import annotations

import base64
import html
import io
import os
import pathlib
from typing import List, Optional, Sequence, Tuple
from urllib.parse import quote

from PIL import Image, ImageDraw, ImageFont

from ..evaluation.visualize import GREEN, QUERY_BLUE, RED

__all__ = ["GREEN", "RED", "QUERY_BLUE", "GREY", "esc", "img_src", "thumbnail", "page",
           "contact_sheet", "rgb"]

GREY = (150, 150, 150)
THUMB = (64, 128)                 # (width, height)

STYLE = """
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; } h3 { font-size: 14px; margin: 14px 0 4px; }
table.kv td, table.kv th { padding: 2px 10px 2px 0; text-align: left; font-size: 13px; }
table.grid { border-collapse: collapse; font-size: 12px; }
table.grid td, table.grid th { border: 1px solid #ccc; padding: 2px 6px; }
.row { display: flex; flex-wrap: nowrap; align-items: flex-start; margin: 6px 0 12px; overflow-x: auto; }
.cell { margin-right: 4px; text-align: center; font-size: 11px; line-height: 1.25; }
.cell img { border: 4px solid #999; display: block; }
.gap { width: 14px; flex: none; }
.note { color: #666; font-size: 12px; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def rgb(colour: Tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % tuple(colour)


def thumbnail(path: str, size: Tuple[int, int] = THUMB) -> Image.Image:
    """The image resized to ``size`` (grey placeholder when it cannot be read)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB").resize(size)
    except (OSError, ValueError, TypeError):
        return Image.new("RGB", size, GREY)


def img_src(path: str, page_dir: str, embed: bool = False, size: Tuple[int, int] = THUMB) -> str:
    """The ``src`` of an ``<img>`` showing ``path`` on a page in ``page_dir``: a relative, URL-quoted
    link (an absolute ``file://`` URL when no relative path exists, e.g. another drive), or an
    embedded JPEG thumbnail with ``embed``."""
    if embed:
        buf = io.BytesIO()
        thumbnail(path, size).save(buf, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(page_dir))
    except ValueError:  # another drive on Windows
        return pathlib.Path(os.path.abspath(path)).as_uri()
    return quote(rel.replace(os.sep, "/"))


def page(title: str, body: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
            f"<h1>{esc(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")


def _font():
    try:
        return ImageFont.load_default()
    except Exception:  # pragma: no cover - very old Pillow
        return None


def contact_sheet(paths: Sequence[str], captions: Sequence[str], out_path: str,
                  colours: Optional[Sequence[Tuple[int, int, int]]] = None, columns: int = 12,
                  size: Tuple[int, int] = (48, 96), title: str = "", more: int = 0) -> str:
    """A PNG grid of thumbnails (``columns`` per row) with a one-line caption under each and a
    border of ``colours[i]`` (grey by default); ``title`` on top, and "+N more" when ``more``."""
    n = len(paths)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    w, h = size
    cap, pad, border, top = 12, 4, 3, 16 if title else 0
    cw, ch = w + 2 * border + pad, h + 2 * border + cap + pad
    bottom = 14 if more else 0
    sheet = Image.new("RGB", (max(cols * cw + pad, 160), rows * ch + pad + top + bottom), "white")
    draw, font = ImageDraw.Draw(sheet), _font()
    if title:
        draw.text((pad, 2), title, fill="black", font=font)
    for i, (p, text) in enumerate(zip(paths, captions)):
        r, c = divmod(i, cols)
        x, y = pad + c * cw, top + pad + r * ch
        colour = colours[i] if colours is not None else GREY
        draw.rectangle([x, y, x + w + 2 * border - 1, y + h + 2 * border - 1], fill=tuple(colour))
        sheet.paste(thumbnail(p, size), (x + border, y + border))
        draw.text((x, y + h + 2 * border), str(text)[:10], fill="black", font=font)
    if more:
        draw.text((pad, sheet.size[1] - 13), f"+{more} more (see the CSV)", fill="black", font=font)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    sheet.save(out_path)
    return out_path


def images_in_html(text: str) -> List[str]:
    """The ``src`` of every ``<img>`` in ``text`` (for checks)."""
    from html.parser import HTMLParser  # noqa: PLC0415

    found: List[str] = []

    class _P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                found.append(dict(attrs).get("src", ""))

    _P().feed(text)
    return found
