#!/usr/bin/env bash
# Installs every Debian package pimqat needs to build, test and run its main job.
# Idempotent: packages already present are left alone; safe to run repeatedly.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libeigen3-dev libhdf5-dev hdf5-tools zlib1g-dev
  libyaml-cpp-dev libboost-serialization-dev
  libopenmpi-dev openmpi-bin
  libdnnl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox
  dataset-fashion-mnist
  python3-h5py python3-numpy python3-pandas
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
