#!/bin/bash
# The images' ENTRYPOINT: `docker run IMAGE sft ...` runs `swift sft ...`.
# On the Ascend CANN bases the toolkit's environment (library paths, ASCEND_* variables) comes from its
# set_env.sh scripts (bash), which the CANN images source only in interactive shells.
for env in /usr/local/Ascend/ascend-toolkit/set_env.sh /usr/local/Ascend/nnal/atb/set_env.sh; do
  # shellcheck disable=SC1090
  [ -f "$env" ] && . "$env"
done
exec swift "$@"
