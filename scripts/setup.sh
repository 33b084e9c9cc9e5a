#!/usr/bin/env bash
# Installs the system packages advseg needs when they are missing (Debian/Ubuntu):
# a Vulkan loader and, when no Vulkan driver is present, Mesa's software driver (lavapipe).
set -euo pipefail
need=()
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
if ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  need+=(mesa-vulkan-drivers)
fi
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "advseg needs a Vulkan loader and driver (${need[*]}); install them with your package manager" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # apt may drop a downloaded .deb under load; one retry covers it.
  $SUDO apt-get install -y --no-install-recommends "${need[@]}" || $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
