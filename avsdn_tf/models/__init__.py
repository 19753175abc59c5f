"""The model layer: serializable layers, the registered per-segment models (backbones), the
tasks that put a supervision's heads, targets, losses and metrics on them. Models know shapes,
not files."""
