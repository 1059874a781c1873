#!/usr/bin/env bash
# The main job: a return-to-start episode in the default generated world -> demo.mp4
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/camworld demo "$@"
