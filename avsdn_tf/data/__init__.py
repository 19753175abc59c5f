"""The data layer: the record format, data directories, the AVE release reader, the built-in
synthetic set and the tf.data pipeline. It knows records, not models or supervisions."""
