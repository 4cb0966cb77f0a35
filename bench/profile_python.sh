#!/usr/bin/env bash
# Interpreter wrapper for `bench.py --profile DIR`: runs each Ansible module process under pyinstrument
# (found on BENCH_PYINSTRUMENT_PATH) and writes a text profile per module run into $BENCH_PROFILE_DIR.
set -euo pipefail
name=$(basename "${1:-python}" .py)
export PYTHONPATH=${BENCH_PYINSTRUMENT_PATH}${PYTHONPATH:+:$PYTHONPATH}
exec "$BENCH_REAL_PYTHON" -m pyinstrument --show-all -r text -o "$BENCH_PROFILE_DIR/$name-$(date +%s%N).txt" "$@"
