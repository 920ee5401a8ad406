"""Deployment: ``export()`` runs an exporter plugin, ``verify()`` checks a .tflite against its run,
and ``compare`` holds what every exporter shares (comparing outputs, recording results)."""
