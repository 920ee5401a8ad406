"""Helpers of the ``tflite`` exporter for fine-tuning before conversion (QAT, pruning, clustering)."""
