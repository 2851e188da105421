"""train: image classifiers by transfer learning or from scratch, with checkpoints and cards."""
