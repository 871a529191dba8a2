"""Pieces of the multi-process set-up that need no second process."""
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.training import distributed as ddp


def test_more_processes_than_gpus_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(GanforgeError, match="started 4 processes on this node but it has 2 CUDA device"):
        ddp.init_distributed("auto", 5)


@pytest.mark.parametrize("env,msg", [({"WORLD_SIZE": "2", "RANK": "2"}, "inconsistent"),
                                     ({"WORLD_SIZE": "two"}, "not an integer")])
def test_bad_torchrun_environment_is_one_line(monkeypatch, env, msg):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(GanforgeError, match=msg):
        ddp.env_info()


def test_single_process_helpers_are_no_ops():
    net = torch.nn.BatchNorm1d(3)
    assert ddp.wrap(net, torch.device("cpu")) is net
    assert ddp.agree([True, False], [net]) == [True, False]
    assert ddp.gather_objects({"a": 1}) == [{"a": 1}]
    assert ddp.broadcast_object(5) == 5
