#!/bin/bash
# The images' ENTRYPOINT: `docker run IMAGE sft ...` runs `swift sft ...`.
# On the Ascend CANN bases the toolkit's environment (library paths, ASCEND_* variables) comes from its
# set_env.sh scripts (bash), which the CANN images source only in interactive shells. They are sourced
# with their own arguments, not the container's: ATB's would otherwise start Python to ask torch for its
# C++ ABI on every start (PyPI's torch 2.x wheels use the new one).
source_env() {
  local script=$1
  shift
  # shellcheck disable=SC1090
  [ -f "$script" ] && . "$script" "$@"
}
source_env /usr/local/Ascend/ascend-toolkit/set_env.sh
source_env /usr/local/Ascend/nnal/atb/set_env.sh --cxx_abi=1
exec swift "$@"
