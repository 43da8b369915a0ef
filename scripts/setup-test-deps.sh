#!/usr/bin/env bash
# Installs what the tests need from Debian's packages when it is missing and this machine can (root with apt):
# a real rsyslog with its OpenSSL TLS driver (the syslog sink tests), tini (the container entry point's smoke
# test runs the Dockerfile's PID 1), tinyproxy (a real forward proxy for the proxy tests), PostgreSQL (a fleet's
# state), Chromium (the status page in a real headless browser) and Prometheus' promtool (the alerting rules' unit
# tests and the dashboard's queries). Otherwise it says why and succeeds; those tests then skip with that reason.
set -u
missing=()
if ! { command -v rsyslogd >/dev/null 2>&1 && ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1; }; then
  missing+=(rsyslog rsyslog-openssl)
fi
if ! [ -x /usr/bin/tini ]; then
  missing+=(tini)
fi
if ! command -v tinyproxy >/dev/null 2>&1 && ! [ -x /usr/bin/tinyproxy ]; then
  missing+=(tinyproxy)
fi
# Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin (off the PATH).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v promtool >/dev/null 2>&1; then
  missing+=(prometheus)
fi
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-deps: ${missing[*]} not installed and this is not root with apt-get: the tests that need them will skip" >&2
  exit 0
fi
echo "setup-test-deps: installing ${missing[*]} for the tests" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/setup-test-deps.log 2>&1; then
  echo "setup-test-deps: apt-get could not install ${missing[*]} (see /tmp/setup-test-deps.log): the tests that need them will skip" >&2
fi
exit 0
