"""The machine the toolkit runs on: the Docker Engine API client, the Compose v2 binary, the
NVIDIA GPUs (NVML, nvidia-smi) and the advisory locks. The only layer that talks to dockerd,
NVML or Compose directly.
"""
