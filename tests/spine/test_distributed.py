"""Two processes (gloo on CPU, as torchrun would start them) train one model: gradients are averaged, so
both ranks hold identical weights, and only rank 0 writes the run folder."""
import hashlib
import os
import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import ganforge
    from ganforge.training import loop

    trained = {}
    real_run = loop.Trainer.run

    def run(self):
        path = real_run(self)
        trained["G"] = self.models.nets["G"]
        return path

    loop.Trainer.run = run
    ganforge.train("dcgan", name="ddp", runs_dir=out, echo=lambda *a, **k: None,
                   overrides=["model.ngf=8", "model.ndf=8", "train.batch_size=8", "train.steps=3",
                              "train.progress=false", "train.device=cpu"])
    h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in trained["G"].parameters())).hexdigest()
    with open(os.path.join(out, f"rank{rank}.sha"), "w") as f:
        f.write(h)
    torch.distributed.destroy_process_group()


def test_two_rank_training_keeps_ranks_in_sync(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "rank0.sha").read_text() == (tmp_path / "rank1.sha").read_text()
    assert (tmp_path / "ddp" / "checkpoints" / "step-000003").is_dir()
    lines = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # only rank 0 logs
