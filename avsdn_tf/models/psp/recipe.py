"""PSP's training recipe and architecture sizes, as the authors' code sets them.

Read from jasongief/PSP_CVPR_2021: fully_model.py and weakly_model.py (sizes),
fully_supervised_main.py and weakly_supervised_main.py (recipe), Optim.py (the decay).
Constants only; the builder and the losses read them.
"""

# Supervision names (the project's `--supervision` values).
FULL = "full"
WEAK = "weak"
SUPERVISIONS = (FULL, WEAK)

# Inputs: the AVE release's features as they are (no normalisation).
AUDIO_DIM = 128  # VGGish embedding per segment (features)
VISUAL_MAP = (7, 7, 512)  # VGG-19 pool5 map per segment (height, width, channels)
NUM_CLASSES = 29  # 28 event categories + background (classes)
BACKGROUND = 28  # index of the background class (class index)

# Architecture sizes.
ATTENTION_UNITS = 512  # AVEL attention's audio / video projections (units)
AUDIO_PROJECTION_UNITS = (256, 128)  # full: bias-free audio Linear layers (units)
VISUAL_PROJECTION_UNITS = (256, 128)  # full: bias-free attended-visual Linear layers (units)
WEAK_VISUAL_UNITS = 128  # weak: one Linear with bias on the attended visual feature (units)
LSTM_UNITS = 128  # each direction of each modality's BiLSTM (units)
PSP_UNITS = 256  # the PSP block's width, 2 x LSTM_UNITS (units)
CLASSIFIER_HIDDEN_UNITS = 64  # bias-free Linear + ReLU before the bias-free class layer (units)
LAYER_NORM_EPSILON = 1e-6  # the PSP block's shared LayerNorm (epsilon)

# The positive sample propagation threshold (affinity entries at or below it are dropped).
THRESHOLD = {FULL: 0.099, WEAK: 0.095}  # (row-normalised affinity)
PSP_DROPOUT = 0.1  # dropout rate inside the PSP block, training only (probability)

# Losses.
AVPS_WEIGHT = 100.0  # full: loss = cross-entropy + AVPS_WEIGHT x AVPS loss (multiplier)

# Optimisation (both supervisions).
OPTIMIZER = "adam"  # torch.optim.Adam with its defaults (betas 0.9, 0.999; eps 1e-8)
LEARNING_RATE = 1e-3  # initial (learning rate)
BATCH_SIZE = 128  # videos per step; the last partial batch of an epoch is dropped (videos)
EPOCHS = 300  # (epochs)
LR_DECAY_FACTOR = 0.8  # learning rate x this at each decay (multiplier)
# The learning rate decays after epoch e (0-based) when (e + 1) % EVERY == 0 and e < BEFORE.
LR_DECAY_EVERY = {FULL: 60, WEAK: 80}  # (epochs)
LR_DECAY_BEFORE = {FULL: 170, WEAK: 200}  # (epoch index, 0-based)
EVAL_EVERY = 5  # the authors score val and test every 5 epochs from epoch 5 (epochs)
SEED = 123  # the authors' fixed seed (random, numpy, torch)
# Weak: the background-only videos of the release join the training split (their 178).
WEAK_TRAIN_WITH_BACKGROUND_VIDEOS = True  # (flag)
