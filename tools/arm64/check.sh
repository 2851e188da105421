#!/usr/bin/env bash
# `make test-arm64`: the Raspberry Pi path (Debian bookworm arm64) tested under qemu emulation.
#
# 1. a bookworm arm64 root, debootstrapped once and cached outside the clone (root.sh);
# 2. the project installed there as a Pi user does, `pip install .[runtime,dev]`, from aarch64
#    wheels into a venv cached under a hash of those extras (later runs reinstall only the project);
# 3. on x86: a tiny real model (the digits CNN, 2 epochs) trained, exported to ONNX, and run on
#    real images (inputs.py); inside the root: the runtime tests, then the same model on the same
#    images, whose predictions must match x86's (parity.py), then `edgevision bench`, whose report
#    must say aarch64 and emulated; then the extra steps (ARM64_STEPS below, EDGEVISION_ARM64_EXTRA).
#
# usage: tools/arm64/check.sh X86_PYTHON      (the full toolkit's python, e.g. .venv/bin/python)
# env:   EDGEVISION_ARM64_ROOT   root folder (default /var/cache/edgevision/arm64-bookworm)
#        EDGEVISION_ARM64_TESTS  pytest paths run inside (default tests/runtime)
#        EDGEVISION_ARM64_TOL    largest |probability difference| allowed (default 1e-4)
#        EDGEVISION_ARM64_EXTRA  one more shell command run inside, in the work folder
# Exits 0 with "SKIPPED: why" where it cannot run (not root, no binfmt_misc).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
X86_PYTHON=${1:-$REPO/.venv/bin/python}
TESTS=${EDGEVISION_ARM64_TESTS:-tests/runtime}
TOL=${EDGEVISION_ARM64_TOL:-1e-4}
# shellcheck source=root.sh
source "$HERE/root.sh"

# Inside the root, in the work folder (/opt/edgevision/work), after the parity check and the bench:
# each entry is one shell command; the venv's bin is on PATH. The camera app, headless, as a Pi
# user runs it: every frame of the MJPG video (made from the same real images) classified and logged.
ARM64_STEPS=(
    'edgevision camera --model model.onnx --source video.avi --display none --buffer --log camera.jsonl && n=$(wc -l < camera.jsonl) && echo "camera app on $(uname -m): $n of 80 frames classified" && test "$n" -eq 80'
)

PROJECT=/opt/edgevision           # inside the root
HOST_PROJECT=$ARM64_ROOT$PROJECT  # the same folder seen from the host
START=$(date +%s)

# phase NAME COMMAND...: run it and print how long it took.
phase() {
    local name=$1 tic
    shift
    tic=$(date +%s)
    echo "[arm64] $name ..."
    "$@"
    echo "[arm64] $name: $(( $(date +%s) - tic )) s"
}

# x86 side: python with the project's code from this clone.
x86() { PYTHONPATH=$REPO "$X86_PYTHON" "$@"; }

# Inside the root, in the work folder, with the venv first on PATH.
inside() {
    in_root /bin/bash -c "cd $PROJECT/work && PATH=$PROJECT/venv/bin:\$PATH && $1"
}

preflight() {
    [ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, binfmt_misc, chroot); run as root or in CI"
    # One check at a time per root: a second run waits here instead of rebuilding under the first.
    mkdir -p "$(dirname "$ARM64_ROOT")"
    exec 9> "$ARM64_ROOT.lock"
    flock 9
    [ -x "$X86_PYTHON" ] || { echo "test-arm64: no x86 python at $X86_PYTHON (make install)" >&2; exit 1; }
    ensure_host_tools
    ensure_binfmt
}

# The project as a Pi user gets it (tracked and new files, no build outputs), fresh every run.
copy_project() {
    rm -rf "$HOST_PROJECT/src" "$HOST_PROJECT/work"
    mkdir -p "$HOST_PROJECT/src" "$HOST_PROJECT/work"
    (cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$HOST_PROJECT/src")
    copy_host_config
}

# The hash of the extras the venv holds: a change to them builds a new venv.
extras_key() {
    x86 - "$REPO/pyproject.toml" <<'EOF'
import hashlib, json, sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(hashlib.sha256(json.dumps([extras["runtime"], extras["dev"]]).encode()).hexdigest()[:12])
EOF
}

# First time (or new extras): a new venv and `pip install .[runtime,dev]`, as on a Pi. Later: the
# cached venv, and only the project reinstalled from the fresh copy (its dependencies are there).
install_project() {
    local key venv_mark
    key=$(extras_key)
    venv_mark=$HOST_PROJECT/venv/.extras-$key
    if [ -e "$venv_mark" ]; then
        echo "venv cached for extras $key: reinstalling the project only"
        inside "cd ../src && pip install -q --no-deps --no-build-isolation ."
        return
    fi
    rm -rf "$HOST_PROJECT/venv"
    inside "python3 -m venv $PROJECT/venv && cd ../src && pip install -q 'setuptools>=68' && pip install -q '.[runtime,dev]'"
    touch "$venv_mark"
}

# x86: train the digits CNN briefly, export it to ONNX, write the images, predict them.
x86_reference() {
    local work=$HOST_PROJECT/work
    x86 "$HERE/inputs.py" "$work"
    x86 -m edgevision train --data digits --model cnn --epochs 2 --out "$work/train" --quiet
    x86 -m edgevision export --model "$work/train/model.pt" --format onnx --out "$work/model.onnx"
    (cd "$work" && x86 -m edgevision predict --model model.onnx --top-k 10 --json \
        digits/*/*.png $(ls photos/*/* 2>/dev/null) > x86.jsonl)
    echo "x86: $(wc -l < "$work/x86.jsonl") predictions"
}

run_tests() {
    inside "python -c 'import platform; print(\"inside the root: platform.machine() =\", platform.machine())'"
    # The headless OpenCV alone: the GUI wheel would fail on a root without X (libxcb, libGL).
    inside "python - <<'EOF'
import importlib.metadata as metadata
opencv = sorted(d.metadata['Name'] for d in metadata.distributions() if d.metadata['Name'].startswith('opencv'))
print('OpenCV distributions:', opencv)
assert opencv == ['opencv-python-headless'], f'expected only opencv-python-headless, found {opencv}'
import cv2
EOF"
    inside "cd ../src && python -m pytest -q -p no:cacheprovider $TESTS"
}

parity() {
    inside "edgevision predict --model model.onnx --top-k 10 --json \
        digits/*/*.png \$(ls photos/*/* 2>/dev/null) > arm64.jsonl"
    x86 "$HERE/parity.py" "$HOST_PROJECT/work/x86.jsonl" "$HOST_PROJECT/work/arm64.jsonl" --tol "$TOL"
}

# `edgevision bench` under emulation; its report must say aarch64 and emulated.
bench() {
    inside "edgevision bench model.onnx --seconds 3 --out bench"
    x86 - "$HOST_PROJECT/work/bench/report.json" <<'EOF'
import json, sys
machine = json.load(open(sys.argv[1]))["machine"]
print("bench fingerprint:", {k: machine.get(k) for k in ("machine", "emulated", "emulation")})
if machine.get("machine") != "aarch64" or machine.get("emulated") is not True:
    sys.exit("bench fingerprint FAILED: expected machine aarch64 and emulated true")
EOF
}

extra_steps() {
    local step
    for step in "${ARM64_STEPS[@]}" ${EDGEVISION_ARM64_EXTRA:+"$EDGEVISION_ARM64_EXTRA"}; do
        echo "step: $step"
        inside "$step"
    done
}

phase "preflight (host tools, binfmt)" preflight
phase "root $ARM64_ROOT" ensure_root
phase "copy project" copy_project
phase "pip install .[runtime,dev] (aarch64)" install_project
phase "x86 reference (train, export, predict)" x86_reference
phase "runtime tests on aarch64" run_tests
phase "parity x86 vs aarch64" parity
phase "bench under emulation" bench
phase "extra steps" extra_steps
echo "[arm64] passed in $(( $(date +%s) - START )) s"
