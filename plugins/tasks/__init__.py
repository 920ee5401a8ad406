"""Built-in task plugins: what a task's metrics, comparisons, reports and predictions are."""
