"""AVSDN written directly in PyTorch: the peer that benchmarks/bench_training.py measures Keras
against.

Benchmark-only (needs the `bench` extra: torch==2.13.0, CPU build); nothing in avsdn_tf imports it.
The same architecture as avsdn_tf.models.backbones' `avsdn` with full supervision
(../shared/DESIGN.md):

- an LSTM encoder over the audio a_1..a_T and one over the visual vectors v_1..v_T (batch_first);
- their last hidden states fused by one DMRN block and their last cell states by another:
  merged = 0.5 * (U_a(x_a) + U_v(x_v)); x_a' = tanh(x_a + merged); x_v' = tanh(x_v + merged);
  fused = 0.5 * (x_a' + x_v'), with U = Linear(dim, hidden) -> tanh -> Linear(hidden, dim);
- an LSTM decoder whose initial state is the fused (h, c) and whose input at step t is [a_t ; v_t];
- Linear(units, 29) per segment; softmax for probabilities, cross-entropy for training (Adam 1e-3).

Visual maps [B, T, H, W, C] (the AVE release's VGG-19 pool5, 7x7x512) are averaged over H and W
first, as the Keras model's default visual_reduction "pool" does; vectors [B, T, D] pass.
"""

import torch
from torch import nn

NUM_CLASSES = 29


class DMRNFusion(nn.Module):
    """Dual multimodal residual fusion of two equal-sized vectors (Tian et al., ECCV 2018)."""

    def __init__(self, dim, hidden_units=256):
        super().__init__()
        self.audio_mlp = nn.Sequential(
            nn.Linear(dim, hidden_units), nn.Tanh(), nn.Linear(hidden_units, dim)
        )
        self.visual_mlp = nn.Sequential(
            nn.Linear(dim, hidden_units), nn.Tanh(), nn.Linear(hidden_units, dim)
        )

    def forward(self, audio, visual):
        merged = 0.5 * (self.audio_mlp(audio) + self.visual_mlp(visual))
        return 0.5 * (torch.tanh(audio + merged) + torch.tanh(visual + merged))


class AVSDN(nn.Module):
    """audio [B, T, A], visual [B, T, D] -> per-segment logits [B, T, 29]."""

    def __init__(
        self,
        audio_dim=128,
        visual_dim=512,
        encoder_units=128,
        fusion_units=256,
        num_classes=NUM_CLASSES,
    ):
        super().__init__()
        self.audio_encoder = nn.LSTM(audio_dim, encoder_units, batch_first=True)
        self.visual_encoder = nn.LSTM(visual_dim, encoder_units, batch_first=True)
        self.fuse_hidden = DMRNFusion(encoder_units, fusion_units)
        self.fuse_cell = DMRNFusion(encoder_units, fusion_units)
        self.decoder = nn.LSTM(audio_dim + visual_dim, encoder_units, batch_first=True)
        self.classifier = nn.Linear(encoder_units, num_classes)

    def forward(self, audio, visual):
        if visual.dim() == 5:
            visual = visual.mean(dim=(2, 3))
        _, (audio_h, audio_c) = self.audio_encoder(audio)  # [1, B, U] each
        _, (visual_h, visual_c) = self.visual_encoder(visual)
        state = (self.fuse_hidden(audio_h, visual_h), self.fuse_cell(audio_c, visual_c))
        decoded, _ = self.decoder(torch.cat([audio, visual], dim=-1), state)
        return self.classifier(decoded)

    def probabilities(self, audio, visual):
        return torch.softmax(self(audio, visual), dim=-1)


def train_epoch(model, optimizer, audio, visual, labels, batch_size, generator=None):
    """One epoch over in-memory tensors in a random order; returns the mean loss."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(audio), generator=generator)
    total, batches = 0.0, 0
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        logits = model(audio[index], visual[index])
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), labels[index].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / max(batches, 1)


@torch.inference_mode()
def predict(model, audio, visual, batch_size):
    """Per-segment probabilities [N, T, 29] for in-memory tensors, batch by batch."""
    model.eval()
    return torch.cat(
        [
            model.probabilities(
                audio[start : start + batch_size], visual[start : start + batch_size]
            )
            for start in range(0, len(audio), batch_size)
        ]
    )
