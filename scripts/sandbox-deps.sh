#!/usr/bin/env bash
# Installs what function sandboxes need, when missing: bubblewrap (the namespaces), slirp4netns
# (an instance's outside network) and setpriv from util-linux (the unprivileged uid). Sourced by
# scripts/run.sh and scripts/test.sh; needs root to install (CI and fresh machines run as root,
# with no terminal).
sandbox_missing=()
command -v bwrap >/dev/null || sandbox_missing+=(bubblewrap)
command -v slirp4netns >/dev/null || sandbox_missing+=(slirp4netns)
command -v setpriv >/dev/null || sandbox_missing+=(util-linux)
if [ ${#sandbox_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "function sandboxes need ${sandbox_missing[*]}: run as root, or apt-get install ${sandbox_missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${sandbox_missing[@]}" >/dev/null
fi
