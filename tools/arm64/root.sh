# Build, cache and enter a Debian bookworm arm64 root (Raspberry Pi OS 64-bit is bookworm for arm64).
# Sourced by check.sh; every function is idempotent and needs root.
#
# ARM64_ROOT   where the root lives, outside the clone so a second run skips the bootstrap
#              (default /var/cache/edgevision/arm64-bookworm; env EDGEVISION_ARM64_ROOT)
# Entering the root happens in a private mount namespace (unshare), so /proc, /dev and the
# bind mounts vanish with the command and a killed run leaves nothing mounted on the host.

ARM64_ROOT=${EDGEVISION_ARM64_ROOT:-/var/cache/edgevision/arm64-bookworm}
ARM64_SUITE=bookworm
ARM64_PACKAGES=python3,python3-venv,python3-pip,ca-certificates
BOOTSTRAP_MARK=.edgevision-bootstrapped
BINFMT_DIR=/proc/sys/fs/binfmt_misc

# Print "SKIPPED: why" and leave with status 0: the check cannot run on this machine.
skip() {
    echo "test-arm64: SKIPPED: $*"
    exit 0
}

# The first http(s) mirror of Debian's main archive that apt on this host uses.
debian_mirror() {
    local mirror
    mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1)
    echo "${mirror:-http://deb.debian.org/debian}"
}

# debootstrap and qemu-user-static from the host's apt when missing.
ensure_host_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ -e /usr/lib/binfmt.d/qemu-aarch64.conf ] || missing+=(qemu-user-static)
    command -v unshare >/dev/null || missing+=(util-linux)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || skip "no apt-get to install ${missing[*]}"
    echo "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Let the kernel run aarch64 ELF files through qemu: mount binfmt_misc, register Debian's entry.
ensure_binfmt() {
    if [ ! -e "$BINFMT_DIR/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" 2>/dev/null \
            || skip "cannot mount binfmt_misc on $BINFMT_DIR (a container without the privilege?)"
    fi
    if [ ! -e "$BINFMT_DIR/qemu-aarch64" ]; then
        # The F flag opens the interpreter now, so the root needs no copy of qemu.
        grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf > "$BINFMT_DIR/register" 2>/dev/null \
            || skip "the kernel refused the qemu-aarch64 binfmt entry"
    fi
    [ "$(head -n1 "$BINFMT_DIR/qemu-aarch64")" = enabled ] || echo 1 > "$BINFMT_DIR/qemu-aarch64"
}

# Fail when anything is still mounted below the root (removing it would reach into the host).
assert_nothing_mounted() {
    if grep -q " $ARM64_ROOT/" /proc/mounts; then
        echo "test-arm64: something is mounted below $ARM64_ROOT; unmount it first" >&2
        exit 1
    fi
}

# debootstrap the root once; a half-built root (no mark) is removed and built again.
ensure_root() {
    [ -e "$ARM64_ROOT/$BOOTSTRAP_MARK" ] && return 0
    assert_nothing_mounted
    rm -rf "$ARM64_ROOT"
    mkdir -p "$ARM64_ROOT"
    local mirror
    mirror=$(debian_mirror)
    echo "debootstrap $ARM64_SUITE arm64 from $mirror into $ARM64_ROOT (about 7 minutes, once)"
    debootstrap --arch=arm64 --foreign --variant=minbase --include="$ARM64_PACKAGES" \
        "$ARM64_SUITE" "$ARM64_ROOT" "$mirror" > "$ARM64_ROOT.debootstrap.log" 2>&1 \
        || { tail -n 20 "$ARM64_ROOT.debootstrap.log"; exit 1; }
    in_root /debootstrap/debootstrap --second-stage >> "$ARM64_ROOT.debootstrap.log" 2>&1 \
        || { tail -n 20 "$ARM64_ROOT.debootstrap.log"; exit 1; }
    touch "$ARM64_ROOT/$BOOTSTRAP_MARK"
}

# The host's pip configuration and CA bundle, so pip inside reaches the registry (the root's own
# bundle fails on the certificate). Copied on every run: the host's settings may change.
copy_host_config() {
    local f
    for f in /etc/pip.conf /etc/xdg/pip/pip.conf /etc/xdg/pip/constraints.txt \
        /root/.config/pip/pip.conf /root/.pip/pip.conf; do
        [ -e "$f" ] || continue
        mkdir -p "$ARM64_ROOT$(dirname "$f")"
        cp "$f" "$ARM64_ROOT$f"
    done
    cp /etc/ssl/certs/ca-certificates.crt "$ARM64_ROOT/etc/ssl/certs/ca-certificates.crt"
    cp /etc/resolv.conf "$ARM64_ROOT/etc/resolv.conf" 2>/dev/null || true
}

# Local package folders named by the host's pip settings (find-links, file:// indexes) that exist:
# bound read-only at the same path inside so pure-Python wheels come from them. Their compiled
# wheels are x86_64 only, so pip takes aarch64 ones from the registry.
local_pip_dirs() {
    {
        pip3 config list 2>/dev/null || python3 -m pip config list 2>/dev/null
        env | grep -E '^PIP_(FIND_LINKS|EXTRA_INDEX_URL|INDEX_URL)='
    } | grep -oE "(file://)?/[^ '\"]+" | sed -e 's|^file://||' -e 's|/simple/*$||' \
        | sort -u | while read -r d; do [ -d "$d" ] && echo "$d"; done
}

# Run a command inside the root: a private mount namespace with /proc, /dev and the local pip
# folders. PIP_* settings pass through; the rest of the host environment does not.
# No /sys: onnxruntime's cpuinfo (Arm code) then only warns that it cannot read the CPU list;
# with the host's /sys (x86 topology) it crashes under qemu (a segfault creating a session).
in_root() {
    local binds pip_env=() line
    binds=$(local_pip_dirs | tr '\n' ' ')
    while IFS= read -r line; do pip_env+=("$line"); done < <(env | grep -E '^PIP_' || true)
    # shellcheck disable=SC2016  # expanded by the inner shell
    unshare --mount --propagation private -- /bin/bash -c '
        set -e
        R=$1 binds=$2
        shift 2
        mount -t proc proc "$R/proc"
        mount --rbind /dev "$R/dev"
        for d in $binds; do mkdir -p "$R$d"; mount --bind -o ro "$d" "$R$d"; done
        exec chroot "$R" "$@"
    ' in_root "$ARM64_ROOT" "$binds" \
        /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 "${pip_env[@]}" "$@"
}
