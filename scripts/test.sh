#!/usr/bin/env bash
# The test command, set-up included: installs what the tests need and the machine lacks (on
# Debian or Ubuntu, with apt-get: python3 with pip and npm, whose clients fetch the pinned assets
# on first use, and Mesa's software Vulkan driver, lavapipe, for the wgpu tests), then runs
# `cargo test --release --features wgpu` with any further arguments, e.g.
# `scripts/test.sh --test it engine::`. Needs a Rust toolchain (https://rustup.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

updated=
# apt-get install, as root or through sudo.
install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "scripts/test.sh: needs $*: run as root, or install them (apt-get install $*)" >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "scripts/test.sh: needs $* and has no apt-get to install them: install them first" >&2
        exit 1
    fi
    if [ -z "$updated" ]; then
        "${sudo[@]}" apt-get update -qq
        updated=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

command -v cargo >/dev/null || {
    echo "scripts/test.sh: needs a Rust toolchain (cargo): https://rustup.rs" >&2
    exit 1
}
command -v python3 >/dev/null || install python3 python3-pip
python3 -m pip --version >/dev/null 2>&1 || install python3-pip
command -v npm >/dev/null || install npm
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || install mesa-vulkan-drivers libvulkan1

# Incremental compilation of tandem's own crates (dependencies are never incremental): a change
# to one file rebuilds the changed parts of the library and the test binaries, not all of them.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-1}"
cargo test --release --features wgpu "$@"

# On a CPU with AVX-512, the numerical tests once more on the AVX2+FMA kernels (a build without
# the `avx512` feature: matrixmultiply, the gemm crate and the host row kernels then take the
# path of AVX2-only CPUs), so that their bounds hold on both. Only after a full run.
if [ $# -eq 0 ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    echo "scripts/test.sh: the numerical tests on the AVX2+FMA kernels (build without avx512)"
    avx2=(cargo test --release --no-default-features --features https)
    "${avx2[@]}" --lib -- kernels:: backbone::frozen bench::cpu
    "${avx2[@]}" --test it -- decoder:: verbalizer:: training::host training::batched \
        backbone::padded
fi
