"""The training engine: ``train()`` and what it is made of (options, config files, compiling,
callbacks, augmentation, transfer learning, schedules, losses)."""
