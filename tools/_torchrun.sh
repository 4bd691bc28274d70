#!/usr/bin/env bash
# Shared launcher of dist_train.sh and dist_test.sh:
#   tools/_torchrun.sh TOOL NPROC [TOOL ARGS]
# runs tools/TOOL under torchrun with --launcher pytorch. NNODES, NODE_RANK,
# PORT and MASTER_ADDR come from the environment (one node by default).
TOOL=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
exec torchrun \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$(dirname "$0")/$TOOL" \
    "${@:3}" \
    --launcher pytorch
