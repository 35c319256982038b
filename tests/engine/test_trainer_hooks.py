"""TrainerBase and its hooks (as detectron2's engine tests): the exact call order of the seven hook
callbacks, registration order, the counters the hooks see, ``after_train`` after an exception, a
mid-epoch start (``resume_epoch`` instead of ``before_epoch``, only the remaining steps) and
``register_hooks`` (None skipped, a weak reference to the trainer)."""
import gc
import weakref

import pytest

from unreidusl.engine.train_loop import HookBase, TrainerBase
from unreidusl.utils.events import EventStorage

EVENTS = ("before_train", "before_epoch", "resume_epoch", "before_step", "after_step", "after_epoch",
          "after_train")


class Recorder(HookBase):
    """Appends ``(name, event, epoch, inner_iter, iter)`` to ``log`` at every callback (epoch and
    inner_iter None in ``before_train``, before any epoch; inner_iter None in ``before_epoch``: see
    test_before_epoch_sees_the_start_of_the_epoch)."""

    def __init__(self, log, name="hook"):
        self.log, self.name = log, name

    def _record(self, event):
        t = self.trainer
        epoch = None if event == "before_train" else t.epoch
        inner = None if event in ("before_train", "before_epoch") else t.inner_iter
        self.log.append((self.name, event, epoch, inner, t.iter))
        if event in ("before_step", "after_step"):  # the event storage follows the trainer
            assert (t.storage.iter, t.storage.epoch) == (t.iter, t.epoch), event


for _event in EVENTS:
    setattr(Recorder, _event, lambda self, _e=_event: self._record(_e))


class StepTrainer(TrainerBase):
    """A trainer whose step only records the position it ran at (and may fail at one iteration)."""

    def __init__(self, iters_per_epoch=3, fail_at=None):
        super().__init__()
        self.iters_per_epoch = iters_per_epoch
        self.fail_at = fail_at
        self.steps = []

    def run_step(self):
        if self.iter == self.fail_at:
            raise RuntimeError("run_step failed")
        self.steps.append((self.epoch, self.inner_iter, self.iter))


def expected_events(epochs, iters, *, first_epoch=0, first_inner=None, first_iter=0, name="hook"):
    """The callbacks of a run over ``epochs`` (range) of ``iters`` steps, as Recorder logs them."""
    it = first_iter
    out = []
    for e in epochs:
        if e == first_epoch and first_inner is not None:
            out.append((name, "resume_epoch", e, first_inner, it))
            start = first_inner
        else:
            out.append((name, "before_epoch", e, None, it))
            start = 0
        for i in range(start, iters):
            out += [(name, "before_step", e, i, it), (name, "after_step", e, i, it)]
            it += 1
        out.append((name, "after_epoch", e, iters, it))
    return out, it


def test_call_order_and_counters_for_two_epochs_of_three_iterations():
    log = []
    trainer = StepTrainer(iters_per_epoch=3)
    trainer.register_hooks([Recorder(log)])
    trainer.train(0, 2)

    assert [entry[1:] for entry in log] == [
        # event          epoch inner iter
        ("before_train", None, None, 0),
        ("before_epoch", 0, None, 0),
        ("before_step", 0, 0, 0), ("after_step", 0, 0, 0),
        ("before_step", 0, 1, 1), ("after_step", 0, 1, 1),
        ("before_step", 0, 2, 2), ("after_step", 0, 2, 2),
        ("after_epoch", 0, 3, 3),
        ("before_epoch", 1, None, 3),
        ("before_step", 1, 0, 3), ("after_step", 1, 0, 3),
        ("before_step", 1, 1, 4), ("after_step", 1, 1, 4),
        ("before_step", 1, 2, 5), ("after_step", 1, 2, 5),
        ("after_epoch", 1, 3, 6),
        ("after_train", 2, 3, 6),  # after a completed run: epoch == max_epochs
    ]
    body, _ = expected_events(range(2), 3)
    assert log == [("hook", "before_train", None, None, 0)] + body + [("hook", "after_train", 2, 3, 6)]
    assert trainer.steps == [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 3), (1, 1, 4), (1, 2, 5)]
    assert (trainer.epoch, trainer.inner_iter, trainer.iter) == (2, 3, 6)
    assert (trainer.start_epoch, trainer.max_epochs) == (0, 2)
    assert isinstance(trainer.storage, EventStorage) and trainer.storage.iter == 6


def test_hooks_run_in_registration_order_at_every_callback():
    log = []
    trainer = StepTrainer(iters_per_epoch=2)
    trainer.register_hooks([Recorder(log, "a"), Recorder(log, "b")])
    trainer.register_hooks([Recorder(log, "c")])  # a later call appends
    trainer.train(0, 2)

    assert [name for name, *_ in log] == ["a", "b", "c"] * (len(log) // 3)
    by_hook = {n: [entry[1:] for entry in log if entry[0] == n] for n in "abc"}
    assert by_hook["a"] == by_hook["b"] == by_hook["c"]
    assert len(by_hook["a"]) == 2 + 2 * (2 + 2 * 2)  # train pair + per epoch: pair + 2 step pairs


def test_iteration_count_continues_from_the_restored_iter_and_start_epoch():
    """A resume at an epoch boundary: ``iter`` survives, epochs before ``start_epoch`` are skipped."""
    log = []
    trainer = StepTrainer(iters_per_epoch=3)
    trainer.iter = 3  # as restored from the checkpoint of epoch 1
    trainer.register_hooks([Recorder(log)])
    trainer.train(1, 3)

    body, _ = expected_events(range(1, 3), 3, first_epoch=1, first_iter=3)
    assert log == [("hook", "before_train", None, None, 3)] + body + [("hook", "after_train", 3, 3, 9)]
    assert [s[0] for s in trainer.steps] == [1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize("start_epoch,inner,first_iter", [(0, 1, 1), (0, 2, 2), (1, 1, 4)])
def test_mid_epoch_start_resumes_the_first_epoch_and_runs_only_the_remaining_steps(start_epoch, inner,
                                                                                   first_iter):
    log = []
    trainer = StepTrainer(iters_per_epoch=3)
    trainer.iter, trainer.start_inner_iter = first_iter, inner  # as restored from a mid-epoch checkpoint
    trainer.register_hooks([Recorder(log)])
    trainer.train(start_epoch, 2)

    body, last_iter = expected_events(range(start_epoch, 2), 3, first_epoch=start_epoch, first_inner=inner,
                                      first_iter=first_iter)
    assert log == [("hook", "before_train", None, None, first_iter)] + body + [("hook", "after_train", 2, 3, 6)]
    assert last_iter == 6
    first = [event for _, event, e, *_ in log if e == start_epoch]
    assert "before_epoch" not in first and first.count("resume_epoch") == 1
    # the resumed epoch's steps: only those after `inner`; later epochs start with before_epoch
    assert [i for e, i, _ in trainer.steps if e == start_epoch] == list(range(inner, 3))
    assert [events for _, events, *_ in log].count("resume_epoch") == 1
    assert trainer.start_inner_iter is None  # used once


class FailInEpoch1(HookBase):
    """Raises at the first ``where`` callback of the second epoch."""

    def __init__(self, where):
        self.where = where

    def _check(self, event):
        if event == self.where and self.trainer.epoch == 1:
            raise RuntimeError(f"{event} failed")

    def before_epoch(self):
        self._check("before_epoch")

    def before_step(self):
        self._check("before_step")

    def after_step(self):
        self._check("after_step")

    def after_epoch(self):
        self._check("after_epoch")


@pytest.mark.parametrize("where,position,steps", [
    ("run_step", ("last", "before_step", 1, 0, 3), 3),         # the step's before_step hooks all ran
    ("before_epoch", ("hook", "before_epoch", 1, None, 3), 3),  # the hooks after the failing one are not
    ("before_step", ("hook", "before_step", 1, 0, 3), 3),       # called
    ("after_step", ("hook", "after_step", 1, 0, 3), 4),
    ("after_epoch", ("hook", "after_epoch", 1, 3, 6), 6),
])
def test_an_exception_stops_training_and_still_calls_after_train_once(where, position, steps):
    def run(fail):
        log = []
        trainer = StepTrainer(iters_per_epoch=3, fail_at=3 if fail and where == "run_step" else None)
        trainer.register_hooks([Recorder(log), FailInEpoch1(where) if fail else None, Recorder(log, "last")])
        return trainer, log

    reference, normal = run(fail=False)
    reference.train(0, 2)
    trainer, log = run(fail=True)
    with pytest.raises(RuntimeError, match=f"{where} failed"):
        trainer.train(0, 2)

    *before, end_hook, end_last = log
    assert before == normal[:len(before)] and before[-1] == position  # a normal run up to the failure
    assert [(n, e) for n, e, *_ in (end_hook, end_last)] == [("hook", "after_train"), ("last", "after_train")]
    assert trainer.steps == reference.steps[:steps]


def test_before_epoch_sees_the_start_of_the_epoch():
    seen = []

    class Position(HookBase):
        def before_epoch(self):
            seen.append((self.trainer.epoch, self.trainer.inner_iter))

    trainer = StepTrainer(iters_per_epoch=3)
    trainer.register_hooks([Position()])
    trainer.train(0, 2)
    assert seen == [(0, 0), (1, 0)]


def test_run_step_of_the_base_class_is_abstract():
    log = []
    trainer = TrainerBase()
    trainer.iters_per_epoch = 1
    trainer.register_hooks([Recorder(log)])
    with pytest.raises(NotImplementedError):
        trainer.train(0, 1)
    assert [event for _, event, *_ in log] == ["before_train", "before_epoch", "before_step", "after_train"]


def test_a_before_epoch_hook_may_change_the_epoch_length():
    class Grow(HookBase):
        def before_epoch(self):
            self.trainer.iters_per_epoch = self.trainer.epoch + 1

    trainer = StepTrainer(iters_per_epoch=5)
    trainer.register_hooks([Grow()])
    trainer.train(0, 3)
    assert trainer.steps == [(0, 0, 0), (1, 0, 1), (1, 1, 2), (2, 0, 3), (2, 1, 4), (2, 2, 5)]


def test_default_hooks_do_nothing_and_none_entries_are_skipped():
    log = []
    plain, recorder = HookBase(), Recorder(log)
    trainer = StepTrainer(iters_per_epoch=1)
    trainer.register_hooks([None, plain, None, recorder])
    assert trainer.hooks == [plain, recorder]
    trainer.hooks.append(HookBase())  # a copy: the trainer's list is unchanged
    assert len(trainer.hooks) == 2
    trainer.train(0, 1)
    assert len(log) == 6 and trainer.steps == [(0, 0, 0)]
    assert plain.state_dict() == {}


def test_hooks_hold_a_weak_reference_to_the_trainer():
    hook = HookBase()
    trainer = StepTrainer()
    trainer.register_hooks([hook])
    assert isinstance(hook.trainer, weakref.ProxyType)
    trainer.iter = 7
    assert hook.trainer.iter == 7  # the proxy sees the live trainer
    alive = weakref.ref(trainer)
    del trainer
    gc.collect()
    assert alive() is None  # the hook does not keep the trainer alive
    with pytest.raises(ReferenceError):
        hook.trainer.iter
