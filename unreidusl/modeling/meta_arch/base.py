"""``ReIDMethod``: the base every meta-architecture derives from (docs/meta_arch.md).

It declares every member the trainer may call, with a no-op default, and the capabilities that
switch hooks on, so the trainer reads declarations instead of probing the model:

* ``reset_pseudo_labels(result)`` (required): a new ``ClusterResult`` (labels, features, eps, core
  mask, centroid labels, tight/loose labels, camera ids, distance) to re-initialise memories and
  classifiers from;
* ``forward(batch)`` (required): a dict of weighted loss terms in training, unit features in eval;
* the losses: ``build_losses(cfg)`` turns ``MODEL.LOSSES.NAME`` / ``WEIGHTS`` (or the method's
  ``default_losses`` when NAME is empty) into ``self.losses`` / ``self.loss_weights``, and
  ``weighted_losses(outputs, targets)`` evaluates them in that order;
* ``has_teacher`` → ``update_teacher(global_step)`` after every step (``EMATeacher``);
* ``tracks_progress`` → ``set_progress(iteration, total)`` before every step (``TrainingProgress``);
* ``relabelled_parameters()`` non-empty → their optimiser state is dropped after each new
  clustering (``RelabelledOptimizerState``);
* ``cluster_extractor()`` → the module whose eval forward gives the clustering features;
* ``per_sample_grad_keys`` non-empty → the forward is split into ``per_sample(images)`` and
  ``batch_losses(per_sample, targets, **batch)``, which gradient accumulation
  (``SOLVER.FORWARD_BATCH_SIZE``) needs; ``batch_keys``: the batch fields ``batch_losses`` takes.
"""
from typing import Dict, Tuple

import torch

from ..layers import ResizableModule
from ..losses import build_loss_set

__all__ = ["ReIDMethod"]


class ReIDMethod(ResizableModule):
    """Base of the meta-architectures (module docstring).  ``device`` and the video-extraction pair
    ``frame_features`` / ``embed`` come from the ``Encoder`` attribute named by ``test_encoder``
    (``"encoder"``, or ``"teacher"`` for the mean-teacher methods).
    ``supports_reference_features``: the method implements ``MODEL.HEADS.FRAME_BN`` in training and
    ``CLUSTER.FEATURE pre_bn`` (``build_model`` refuses them for the others)."""

    test_encoder = "encoder"
    supports_reference_features = False
    default_losses: Dict[str, float] = {}
    batch_keys: Tuple[str, ...] = ()
    per_sample_grad_keys: Tuple[str, ...] = ()
    has_teacher = False
    tracks_progress = False

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def supports_chunked_forward(self) -> bool:
        return bool(self.per_sample_grad_keys)

    def frame_features(self, images: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.test_encoder).test_frame_features(images)

    def embed(self, frame_mean: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.test_encoder).test_embed(frame_mean)

    def build_losses(self, cfg) -> None:
        """``self.losses`` (a ModuleDict in the order of MODEL.LOSSES.NAME, or of
        ``default_losses`` when NAME is empty) and ``self.loss_weights``."""
        self.losses, self.loss_weights = build_loss_set(cfg, self.default_losses)

    def float32_batch_losses(self, per_sample: dict, targets: torch.Tensor, **batch) -> Dict[str, torch.Tensor]:
        """``batch_losses`` with the per-sample outputs in float32 and autocast off: under mixed
        precision only the backbone runs in bf16 / fp16, the neck, memories, logits and losses in
        float32 (as in the chunked forward of gradient accumulation); without it, a no-op."""
        device = next(iter(per_sample.values())).device.type
        with torch.autocast(device_type=device, enabled=False):
            full = {k: v.float() if v.is_floating_point() else v for k, v in per_sample.items()}
            return self.batch_losses(full, targets, **batch)

    def weighted_losses(self, outputs: dict, targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``{name: weight · loss(outputs, targets)}`` for every configured loss."""
        return {n: self.loss_weights[n] * fn(outputs, targets) for n, fn in self.losses.items()}

    def reset_pseudo_labels(self, result) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement reset_pseudo_labels(result)")

    def cluster_extractor(self) -> torch.nn.Module:
        """The module whose eval forward gives the clustering features (default: the model)."""
        return self

    def update_teacher(self, global_step: int) -> None:
        """Called after every optimiser step when ``has_teacher``."""

    def set_progress(self, iteration: int, total: int) -> None:
        """Called before every step when ``tracks_progress``."""

    def relabelled_parameters(self):
        """Parameters replaced by ``reset_pseudo_labels`` (their optimiser state is dropped)."""
        return []
