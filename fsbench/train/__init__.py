"""Training machinery shared by methods: checkpoints (safetensors, no pickle), a resumable loop, DDP, face data."""
