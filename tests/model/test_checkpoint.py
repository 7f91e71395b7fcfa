"""Checkpoint formats that load, and the one-line errors for files that do not."""

from __future__ import annotations

import pytest
import torch

from p3m_live.errors import P3MError
from p3m_live.model import load_p3mnet
from p3m_live.model.checkpoint import BACKBONE_ALIASES

X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _fused(model) -> torch.Tensor:
    with torch.no_grad():
        return model(X).fused


@pytest.fixture(scope="module")
def reference(p3m_native):
    return _fused(p3m_native)


def _is_alias(key: str) -> bool:
    return key.startswith(tuple(a for a, _ in BACKBONE_ALIASES))


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda sd: {"state_dict": sd}, id="release"),
        pytest.param(lambda sd: dict(sd), id="bare"),
        pytest.param(lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}}, id="dataparallel"),
        pytest.param(lambda sd: {k: v for k, v in sd.items() if not _is_alias(k)}, id="resnet-keys-only"),
        pytest.param(lambda sd: {k: v for k, v in sd.items() if not k.startswith("resnet.")}, id="encoder-keys-only"),
        pytest.param(
            lambda sd: {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")},
            id="no-batch-counters",
        ),
    ],
)
def test_accepted_formats(transform, seed32_state, reference, tmp_path):
    path = tmp_path / "w.pth"
    torch.save(transform(seed32_state), path)
    assert torch.equal(_fused(load_p3mnet(path)), reference)


def test_state_dict_in_memory(seed32_state, reference):
    model = load_p3mnet(seed32_state)
    assert not model.training
    assert torch.equal(_fused(model), reference)


def test_classifier_is_dropped(p3m_native):
    assert not any(k.startswith("resnet.fc") for k in p3m_native.state_dict())


def _error(path) -> str:
    with pytest.raises(P3MError) as e:
        load_p3mnet(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    assert "not found" in _error(tmp_path / "nope.pth")


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "junk.pth"
    p.write_bytes(b"this is not a checkpoint\n" * 40)
    assert "not a PyTorch checkpoint" in _error(p)


def test_truncated_file(seed32_ckpt, tmp_path):
    p = tmp_path / "cut.pth"
    p.write_bytes(seed32_ckpt.read_bytes()[:5_000_000])
    assert "truncated" in _error(p)


def test_another_models_weights(tmp_path):
    p = tmp_path / "other.pth"
    torch.save({"state_dict": torch.nn.Linear(4, 2).state_dict()}, p)
    msg = _error(p)
    assert "missing" in msg and "resnet.conv1.weight" in msg and "unexpected 2 weights" in msg


def test_wrong_shape_is_named(seed32_state, tmp_path):
    sd = dict(seed32_state)
    sd["decoder_final_l.weight"] = torch.zeros(2, 64, 3, 3)
    p = tmp_path / "shape.pth"
    torch.save({"state_dict": sd}, p)
    assert "wrong shape for decoder_final_l.weight (2, 64, 3, 3) != (1, 64, 3, 3)" in _error(p)


def test_one_missing_weight_is_named(seed32_state, tmp_path):
    sd = {k: v for k, v in seed32_state.items() if k != "tfi_2.conv1.weight"}
    p = tmp_path / "missing.pth"
    torch.save(sd, p)
    assert "missing 1 weights (tfi_2.conv1.weight)" in _error(p)


def test_disagreeing_backbone_copies(seed32_state, tmp_path):
    sd = dict(seed32_state)
    sd["encoder0.0.weight"] = sd["encoder0.0.weight"] + 1
    p = tmp_path / "conflict.pth"
    torch.save(sd, p)
    assert "resnet.conv1.weight" in _error(p)


def test_no_tensors(tmp_path):
    p = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, p)
    assert "no state dict" in _error(p)
