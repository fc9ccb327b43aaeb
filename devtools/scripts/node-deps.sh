#!/usr/bin/env bash
# Install the Debian packages the local cluster's real node and the image builds need.
# Idempotent: when every package is already installed it only checks and returns.
set -euo pipefail

PACKAGES=(
  containerd                  # the node's container runtime (CRI), run as a plain process
  runc                        # the OCI runtime (crun fails on hybrid cgroup v1 hosts)
  containernetworking-plugins # bridge, host-local, portmap, loopback (in /usr/lib/cni)
  iptables                    # kube-proxy's iptables mode, the bridge's masquerade
  conntrack                   # kube-proxy cleans stale UDP entries with it
  podman                      # builds the images, rootful, with --runtime runc
  mmdebstrap                  # the Debian base image's root filesystem
  uidmap                      # podman's dependency for user namespaces
  gcc                         # compiles the pod sandbox's pause binary (static)
  libc6-dev                   # its static C library
  patch                       # applies tools/go/<name>/*.patch to a module's source (Traefik's RequestMirror)
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "node-deps: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "node-deps: missing ${missing[*]}; run as root (or: sudo $0)" >&2
  exit 1
fi
echo "node-deps: installing ${missing[*]}"
apt-get update -qq
# policy-rc.d: the packages' services (containerd) must not start; the cluster starts its own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
