# Hand-written by the platform team: CUDA runtime plus the distro's Python.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY nvidia-smi-wrapper.sh /usr/local/bin/gpu-info
