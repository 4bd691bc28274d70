#!/usr/bin/env bash
# Distributed testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS]
# (ARGS go to tools/test.py, e.g. --work-dir, --shift-consistency, --cfg-options;
# on CPUs add --cfg-options env_cfg.dist_cfg.backend=gloo).
exec "$(dirname "$0")/_torchrun.sh" test.py "$3" "$1" "$2" "${@:4}"
