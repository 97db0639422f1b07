#!/bin/sh
# GPU training throughput and MFU of the runner's loop: see benchmarks/gpu.py (arguments are passed on).
exec "${PYTHON:-python}" -m mixopt.benchmarks.gpu "$@"
