"""Frame decoding and torchvision transforms driven by ``INPUT.*``, applied to whole clips.

A sample's frames are decoded and resized to the target size one by one (PIL, bicubic), stacked
into one uint8 tensor ``[T, 3, H, W]`` and augmented with torchvision ``transforms.v2`` ops that
act on the whole stack at once: flip (``INPUT.FLIP``), pad + random crop (``INPUT.PADDING``),
colour jitter (``INPUT.CJ``), normalisation, random erasing (``INPUT.REA``, filled with
``REA.VALUE`` in the normalised tensor).  The random parameters are drawn once per clip, so all
frames of a clip get the same flip / crop / jitter / erased box; ``INPUT.CLIP_CONSISTENT False``
draws them per frame instead (AuxUSLReID's behaviour).  An image is a clip of one frame.
"""
import warnings
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

__all__ = ["ClipTransform", "build_transforms", "CorruptImageError", "read_image", "load_frame"]


class CorruptImageError(OSError):
    """An image file cannot be decoded."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB of any mode; 16/32-bit grey images ("I;16", "I") are scaled to 8 bits (Pillow's own
    conversion clips them, which turns a 16-bit PNG white)."""
    if img.mode.startswith("I"):
        arr = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or arr.max(initial=0) > 255:
            arr = arr / 257.0
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L").convert("RGB")
    return img.convert("RGB")


def read_image(path: str) -> Image.Image:
    """The RGB image at ``path``; ``CorruptImageError`` naming the file when it cannot be read or is
    a decompression bomb (more pixels than ``Image.MAX_IMAGE_PIXELS``)."""
    skip = "or set DATASETS.SKIP_CORRUPT True to skip unreadable images with a warning."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _to_rgb(img)
    except FileNotFoundError as e:
        raise CorruptImageError(
            f"Image file {path} is missing. The dataset folder changed after it was indexed; "
            f"restore the file or re-create the dataset."
        ) from e
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise CorruptImageError(
            f"Image {path} is too large to decode safely ({e}). Replace or delete the file, {skip}"
        ) from None
    except OSError as e:
        raise CorruptImageError(f"Cannot decode image {path} ({e}). Replace or delete the file, {skip}") from e


def load_frame(path: str, size: Sequence[int]) -> np.ndarray:
    """Decode ``path`` and resize it (bicubic) to ``size`` = (H, W): uint8 array [H, W, 3]."""
    img = read_image(path)
    h, w = int(size[0]), int(size[1])
    if img.size != (w, h):
        img = img.resize((w, h), Image.BICUBIC)
    return np.asarray(img)


class ClipTransform:
    """``load(paths)`` → uint8 ``[T, 3, H, W]``; ``__call__(uint8 clip)`` → normalised float clip."""

    def __init__(self, size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 augment: Optional[v2.Compose] = None, erasing: Optional[v2.RandomErasing] = None,
                 consistent: bool = True) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment, self.erasing, self.consistent = augment, erasing, consistent

    @property
    def is_train(self) -> bool:
        return self.augment is not None or self.erasing is not None

    def load(self, paths: Sequence[str]) -> torch.Tensor:
        arr = np.stack([load_frame(p, self.size) for p in paths])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.augment is not None:
            x = self.augment(x)
        x = x.float().div_(255).sub_(self.mean).div_(self.std)
        if self.erasing is not None:
            x = self.erasing(x)
        return x

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]`` (or ``[3, H, W]``) → float32, augmented when training."""
        if not self.consistent and clip.dim() == 4 and clip.shape[0] > 1:
            return torch.stack([self._augment(f) for f in clip])
        return self._augment(clip)

    def __repr__(self) -> str:
        return (f"ClipTransform(size={self.size}, augment={self.augment}, erasing={self.erasing}, "
                f"consistent={self.consistent})")


def build_transforms(cfg, is_train: bool) -> ClipTransform:
    i = cfg.INPUT
    size = tuple(i.SIZE_TRAIN if is_train else i.SIZE_TEST)
    augment, erasing = None, None
    if is_train:
        ops = []
        if i.FLIP.ENABLED:
            ops.append(v2.RandomHorizontalFlip(p=i.FLIP.PROB))
        if i.PADDING.ENABLED:
            ops += [v2.Pad(i.PADDING.SIZE, padding_mode=i.PADDING.MODE), v2.RandomCrop(size)]
        if i.CJ.ENABLED:
            jitter = v2.ColorJitter(i.CJ.BRIGHTNESS, i.CJ.CONTRAST, i.CJ.SATURATION, i.CJ.HUE)
            ops.append(v2.RandomApply([jitter], p=i.CJ.PROB))
        augment = v2.Compose(ops) if ops else None
        if i.REA.ENABLED:
            erasing = v2.RandomErasing(p=i.REA.PROB, scale=(0.02, 0.4), ratio=(0.3, 3.3),
                                       value=list(i.REA.VALUE))
    return ClipTransform(size, i.PIXEL_MEAN, i.PIXEL_STD, augment, erasing, i.CLIP_CONSISTENT)
