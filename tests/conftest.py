"""Shared test set-up."""
import pytest
import torch

# Randomly initialised deep cell networks in eval mode (BN running statistics at 0 / 1) shrink activations
# and gradients into float32's denormal range, which CPUs compute up to ~100x slower; flush them to zero.
torch.set_flush_denormal(True)


@pytest.fixture(scope='module')
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
