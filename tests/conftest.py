"""Shared test set-up."""
import contextlib
import functools
import importlib.util
import itertools
import signal
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

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


@contextlib.contextmanager
def _ctrl_c_before(owner: Any, name: str, call: int = 1) -> Iterator[None]:
    """Deliver SIGINT (what Ctrl-C sends) just before the ``call``-th call of ``owner.name``, handled as Python
    handles it in a terminal. A shell starts background jobs with SIGINT ignored, so that handling is set here."""
    original, calls = getattr(owner, name), itertools.count(1)

    @functools.wraps(original)
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    setattr(owner, name, interrupted)
    try:
        yield
    finally:
        setattr(owner, name, original)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, handler)


@pytest.fixture(scope='session')
def ctrl_c_before() -> Callable[..., Any]:
    """``with ctrl_c_before(owner, name, call): ...``: Ctrl-C just before that call (see ``_ctrl_c_before``)."""
    return _ctrl_c_before


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.fashion_mnist``: the test reads the real Fashion-MNIST files; skipped where they are missing."""
    if item.get_closest_marker('fashion_mnist') is not None:
        from entrannas_timm.data.datasets import DEBIAN_FASHION_MNIST
        if not DEBIAN_FASHION_MNIST.is_dir():
            pytest.skip(f'{DEBIAN_FASHION_MNIST} not installed (apt-get install dataset-fashion-mnist)')


def _load_script(path: str) -> ModuleType:
    file = Path(__file__).resolve().parents[1] / path
    spec = importlib.util.spec_from_file_location(file.stem, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def load_script() -> Callable[[str], ModuleType]:
    """A checkout file that is not in a package (``scripts/fmnist_zoo.py``, ``benchmarks/x.py``) as a module."""
    return _load_script
