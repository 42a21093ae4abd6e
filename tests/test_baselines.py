"""The same-budget references: timm models that ``entrannas train`` trains with the cells' exact protocol."""
from __future__ import annotations

import json

import pytest
import timm
import torch

import entrannas_timm  # noqa: F401  (registers the models)
from entrannas_timm.hub.export import export_run
from entrannas_timm.models.baselines import BASELINE_MODELS
from entrannas_timm.models.profile import count_params
from entrannas_timm.train import checkpoint
from entrannas_timm.train.config import resolve_config
from entrannas_timm.train.trainer import run
from entrannas_timm.utils.errors import CLIError

TINY = dict(dataset='fashion-mnist', data_dir='no-such-dir', subset=256, val_subset=128, batch_size=32, seed=1,
            quiet=True, aux_weight=0., drop_path=0., cutout=0)


@pytest.mark.parametrize('name', BASELINE_MODELS)
def test_baselines_are_timm_models_with_a_resettable_head(name):
    model = timm.create_model(name, in_chans=1, num_classes=7).eval()
    x = torch.randn(3, 1, 28, 28)
    assert model(x).shape == (3, 7)
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (3, model.num_features)
    model.reset_classifier(4)
    assert model(x).shape == (3, 4) and model.get_classifier().out_features == 4
    assert timm.create_model(name).pretrained_cfg['input_size'] == (1, 28, 28)


def test_linear_classifier_is_one_affine_map_of_the_pixels():
    model = timm.create_model('baseline_linear', in_chans=1, img_size=16, num_classes=10).eval()
    assert count_params(model) == 16 * 16 * 10 + 10
    a, b = torch.randn(2, 1, 1, 16, 16)
    # affine: f(a + b) - f(b) = f(a) - f(0)
    zero = torch.zeros_like(a)
    with torch.no_grad():
        assert torch.allclose(model(a + b) - model(b), model(a) - model(zero), atol=1e-5)
    with pytest.raises(ValueError, match='expected 16x16 images'):
        model(torch.randn(1, 1, 28, 28))


def test_cnn_takes_any_image_size():
    model = timm.create_model('baseline_cnn', in_chans=3, num_classes=10).eval()
    for size in (16, 32, 33):
        assert model(torch.randn(1, 3, size, size)).shape == (1, 10)


def test_entrannas_train_trains_a_baseline_on_the_cells_protocol(tmp_path):
    out = tmp_path / 'cnn'
    res = run(resolve_config(dict(TINY, model='baseline_cnn', epochs=2, output=str(out))))
    cfg = json.loads((out / 'config.json').read_text())
    assert cfg['model']['name'] == 'baseline_cnn' and cfg['model']['family'] is None
    assert cfg['model']['params'] == count_params(timm.create_model('baseline_cnn', in_chans=1))
    assert [r['epoch'] for r in res.records] == [1, 2] and 'train_aux_loss' not in res.records[0]
    # the run's weights rebuild the network that scored the recorded accuracy
    model, _ = checkpoint.build_run_model(out)
    assert type(model).__name__ == 'SmallCNN'
    with pytest.raises(CLIError, match='same-budget reference, not a zoo model'):
        export_run(str(out), str(tmp_path / 'export'))
    assert not (tmp_path / 'export').exists()


@pytest.mark.parametrize('over, flag', [(dict(aux_weight=0.4), '--aux-weight'), (dict(drop_path=0.1), '--drop-path'),
                                        (dict(genotype='darts_v2'), '--genotype')])
def test_baseline_refuses_settings_it_cannot_honour(over, flag):
    with pytest.raises(CLIError, match=f'MODEL baseline_linear: .*got {flag}'):
        resolve_config(dict(TINY, model='baseline_linear', **over))
