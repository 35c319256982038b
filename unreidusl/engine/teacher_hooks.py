"""Hooks for models with an EMA teacher and relabelled classifiers (MTCluster), or a schedule
over the training progress (ISE)."""
from .train_loop import HookBase


class EMATeacher(HookBase):
    """After every optimiser step: ``model.update_teacher(g)``, g = the 0-based global step
    (``step_count`` "global") or epoch × iterations of this epoch + step in the epoch
    ("epoch_x_iters", MEAN_TEACHER.EMA_STEP)."""

    def __init__(self, step_count: str = "global") -> None:
        if step_count not in ("global", "epoch_x_iters"):
            raise ValueError(f"MEAN_TEACHER.EMA_STEP must be 'global' or 'epoch_x_iters', got "
                             f"{step_count!r}")
        self.step_count = step_count

    def after_step(self) -> None:
        t = self.trainer
        g = t.iter if self.step_count == "global" else t.epoch * t.iters_per_epoch + t.inner_iter
        t.model.update_teacher(g)


class RelabelledOptimizerState(HookBase):
    """Before an epoch, after the pseudo-labels: when the pseudo-label hook clustered anew (its
    ``rounds`` changed), drop the optimiser state (e.g. Adam moments) of
    ``model.relabelled_parameters()``, so moments of the old clusters are not applied to the new
    centroid rows. The last round seen is checkpointed, so a resumed run makes the same decision as
    an uninterrupted one."""

    def __init__(self, pseudo_labels) -> None:
        self.pseudo_labels = pseudo_labels
        self.last_round = 0

    def before_epoch(self) -> None:
        rounds = self.pseudo_labels.rounds
        if rounds != self.last_round:
            for p in self.trainer.model.relabelled_parameters():
                self.trainer.optimizer.state.pop(p, None)
            self.last_round = rounds

    def state_dict(self) -> dict:
        return {"last_round": self.last_round}

    def load_state_dict(self, state: dict) -> None:
        self.last_round = int(state.get("last_round", 0))


class DynamicIterations(HookBase):
    """Before an epoch, after the pseudo-labels: iterations = round(multiplier × #clusters)
    (AuxUSLReID's dynamic training iterations), at least 1."""

    def __init__(self, multiplier: float) -> None:
        self.multiplier = multiplier

    def before_epoch(self) -> None:
        t = self.trainer
        clusters = t.storage.latest()["cluster/num_clusters"][0]
        t.iters_per_epoch = max(1, int(round(self.multiplier * clusters)))


class TrainingProgress(HookBase):
    """Before every step: ``model.set_progress(iteration, total)`` with the global iteration t and
    T = epochs × iterations per epoch (ISE's progressive interpolation schedule)."""

    def before_step(self) -> None:
        t = self.trainer
        t.model.set_progress(t.iter, t.max_epochs * t.iters_per_epoch)
