"""Torch dataset over ``Sample`` lists, image decoding with clear errors, and the batch collator."""
import logging
from typing import List, Optional, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from .datasets.bases import Sample

logger = logging.getLogger(__name__)


class CorruptImageError(OSError):
    """An image file cannot be decoded."""


def read_image(path: str) -> Image.Image:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as e:
        raise CorruptImageError(
            f"Image file {path} is missing. The dataset folder changed after it was indexed; "
            f"restore the file or re-create the dataset."
        ) from e
    except OSError as e:
        raise CorruptImageError(
            f"Cannot decode image {path} ({e}). Replace or delete the file, or set "
            f"DATASETS.SKIP_CORRUPT True to skip unreadable images with a warning."
        ) from e


class SampleDataset(Dataset):
    """Item i → dict(images [3,H,W], targets, camids, index) for ``samples[i]`` (its first frame)."""

    def __init__(self, samples: Sequence[Sample], transform, skip_corrupt: bool = False) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.skip_corrupt = skip_corrupt

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Optional[dict]:
        s = self.samples[index]
        try:
            img = read_image(s.frames[0])
        except CorruptImageError as e:
            if not self.skip_corrupt:
                raise
            logger.warning("Skipping: %s", e)
            return None
        return {"images": self.transform(img), "targets": s.pid, "camids": s.camid, "index": index}


def collate_samples(items: List[Optional[dict]]) -> dict:
    items = [it for it in items if it is not None]
    if not items:
        return {"images": torch.empty(0), "targets": torch.empty(0, dtype=torch.long),
                "camids": torch.empty(0, dtype=torch.long), "index": torch.empty(0, dtype=torch.long)}
    return {
        "images": torch.stack([it["images"] for it in items]),
        "targets": torch.tensor([it["targets"] for it in items], dtype=torch.long),
        "camids": torch.tensor([it["camids"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
