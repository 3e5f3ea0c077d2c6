"""neurogrip training: workstation-side model training, evaluation and export (needs TensorFlow)."""
