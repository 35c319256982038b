"""Feature extraction in eval mode."""
import logging
import time

import torch

logger = logging.getLogger(__name__)


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, desc: str = "features") -> torch.Tensor:
    """Run ``model`` in eval mode over ``loader`` and return the features [N, d] (float32, CPU),
    in loader order. The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    start, feats = time.perf_counter(), []
    try:
        for batch in loader:
            if len(batch["index"]):
                feats.append(model(batch).float().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise RuntimeError(f"No samples to extract {desc} from: the loader is empty")
    out = torch.cat(feats)
    logger.info("Extracted %s of %d samples in %.1fs", desc, len(out), time.perf_counter() - start)
    return out
