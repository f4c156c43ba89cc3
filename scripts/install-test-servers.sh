#!/usr/bin/env bash
# Installs the Debian packages of the real servers the integration tests start on loopback:
# PostgreSQL (journal), RabbitMQ (queue adapter), OpenSSH sshd (SFTP), and chromium with its chromedriver
# for the console's browser tests (Debian's packages: no browser download). Idempotent; needs root for apt.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then
  echo "test servers: all installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test servers missing (${need[*]}): run as root, or: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing test servers: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps Debian from starting the services system-wide: the tests start their own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "test servers installed"
