"""Features of people's own videos: decoding, VGGish audio embeddings, visual backbones."""
