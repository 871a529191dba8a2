"""The generic training loop and what it needs: devices, EMA, checkpoints, logging, snapshots."""
