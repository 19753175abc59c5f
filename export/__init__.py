"""SavedModel export for TensorFlow Serving, the serving configs, and a REST / gRPC client.

`python -m export.export_model` writes a validated SavedModel version; `python -m export.client`
sends features to a running TF Serving and prints per-second labels and event intervals.
See the README section "Export and serving with TensorFlow Serving".
"""
