#!/bin/sh
# The first layer of every image, shared by its build and runtime stages:
#   - a Python 3 the locked wheels install into (the CUDA and Debian bases get the distribution's own
#     through apt; the Ascend CANN images already ship one);
#   - any CA certificates dropped into docker/certs/ (a TLS-intercepting proxy's), trusted system-wide so
#     pip, uv and the hub clients accept it;
#   - with WITH_COMPILER=true, a C compiler and Python's headers: Triton compiles a small launcher for each
#     kernel on first use (liger-kernel in swift-train, vLLM), and stops with "Failed to find C compiler";
#   - the unprivileged `swift` user (uid SWIFT_UID) and /work, /cache owned by it, so a named volume
#     mounted there starts out writable and every stage's image reads what another one wrote.
set -eu
uid="${SWIFT_UID:-1000}"

# First the certificates, so that apt itself (its https sources) trusts the proxy.
if ls /usr/local/share/ca-certificates/swift-extra/*.crt >/dev/null 2>&1; then
  if command -v update-ca-certificates >/dev/null; then
    update-ca-certificates >/dev/null 2>&1
  else
    echo "prepare-base: docker/certs has certificates but this base has no update-ca-certificates" >&2
    exit 1
  fi
fi

install_packages() {
  if ! command -v apt-get >/dev/null; then
    echo "prepare-base: $* missing and no apt-get to install them; use a Debian or Ubuntu BASE_IMAGE" \
      "(or one with Python 3.11+ and ca-certificates)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  rm -rf /var/lib/apt/lists/*
}

# The CUDA bases list NVIDIA's package repository; nothing comes from it (the torch wheels carry CUDA).
rm -f /etc/apt/sources.list.d/cuda*.list
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then install_packages python3 python3-venv; fi
if [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then
  install_packages ca-certificates
  update-ca-certificates >/dev/null 2>&1
fi
if [ "${WITH_COMPILER:-false}" = true ]; then install_packages gcc libc6-dev python3-dev; fi

# The uid is what matters on a shared volume, so `swift` gets it even where the base has a user with it:
# Ubuntu 24.04's placeholder `ubuntu` gives way; any other (the CANN images' HwHiAiUser) keeps it, shared.
if ! id swift >/dev/null 2>&1; then
  [ "$(getent passwd "$uid" | cut -d: -f1)" = ubuntu ] && userdel --remove ubuntu 2>/dev/null
  useradd --create-home --non-unique --uid "$uid" --shell /bin/sh swift
fi
mkdir -p /work /cache
chown swift:swift /work /cache
