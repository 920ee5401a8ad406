"""Learning-rate schedules Keras lacks. Registered so that a checkpoint resumes on any backend."""

import math

import keras


@keras.saving.register_keras_serializable(package="kerastack")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle: linear rise from ``peak / div`` to ``peak`` over ``warmup_steps``, then cosine
    annealing to ``peak / final_div`` at ``total_steps`` (Smith & Topin, 2018)."""

    def __init__(self, peak, total_steps, warmup_steps, div=25.0, final_div=1e4):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = max(1, int(warmup_steps))
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        start, end = self.peak / self.div, self.peak / self.final_div
        rise = start + (self.peak - start) * ops.minimum(step / self.warmup_steps, 1.0)
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        fall = end + (self.peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, rise, fall)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "div": self.div,
            "final_div": self.final_div,
        }
