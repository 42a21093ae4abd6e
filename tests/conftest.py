"""Shared test set-up."""
import torch

# Randomly initialised deep cell networks in eval mode (BN running statistics at 0 / 1) shrink activations
# and gradients into float32's denormal range, which CPUs compute up to ~100x slower; flush them to zero.
torch.set_flush_denormal(True)
