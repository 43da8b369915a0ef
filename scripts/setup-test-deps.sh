#!/usr/bin/env bash
# Installs what the syslog sink tests need (a real rsyslog with its OpenSSL TLS driver) when it is missing and
# this machine can: root with apt. Otherwise it says why and succeeds; those tests then skip with that reason.
set -u
if command -v rsyslogd >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-deps: rsyslog is not installed and this is not root with apt-get: the syslog tests against rsyslog will skip" >&2
  exit 0
fi
echo "setup-test-deps: installing rsyslog and rsyslog-openssl for the syslog sink tests" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends rsyslog rsyslog-openssl; } >/tmp/setup-test-deps.log 2>&1; then
  echo "setup-test-deps: apt-get could not install rsyslog (see /tmp/setup-test-deps.log): the syslog tests against rsyslog will skip" >&2
fi
exit 0
