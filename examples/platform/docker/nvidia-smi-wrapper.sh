#!/bin/sh
exec nvidia-smi --query-gpu=name,memory.total --format=csv
