"""Built-in tasks: what a kind of target means for losses, metrics, comparisons, reports and the device."""
