#!/usr/bin/env bash
# Distributed training with torchrun: tools/dist_train.sh CONFIG GPUS [ARGS]
# (ARGS go to tools/train.py, e.g. --work-dir, --resume, --cfg-options).
exec "$(dirname "$0")/_torchrun.sh" train.py "$2" "$1" "${@:3}"
