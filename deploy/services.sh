#!/usr/bin/env bash
# Sourced by dev.sh and test.sh: make sure PostgreSQL, Redis and Mosquitto run on this
# machine (start them if stopped, install them from Debian's packages if missing), and
# that the mold linker named in .cargo/config.toml is there.

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_UPDATED=""

apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    say "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  # local development and tests connect as postgres over TCP without a password
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
    say "allowing trusted local TCP connections for the postgres user (development machine)"
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload
    sleep 1
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null
}

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing Redis"
    apt_install redis-server
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
}

ensure_mosquitto() {
  if ! command -v mosquitto >/dev/null 2>&1; then
    say "installing Mosquitto"
    apt_install mosquitto mosquitto-clients
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    say "starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
    for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.25; done
  fi
}

ensure_toolchain() {
  if ! command -v mold >/dev/null 2>&1; then
    say "installing the mold linker"
    apt_install mold
  fi
  if ! command -v cc >/dev/null 2>&1; then
    apt_install gcc
  fi
  # the captcha's OCR-resistance test reads captchas with Tesseract
  if ! command -v tesseract >/dev/null 2>&1; then
    say "installing tesseract-ocr (captcha test)"
    apt_install tesseract-ocr
  fi
  # printed bills embed a Chinese TrueType font; the PDF test reads them back with poppler
  if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    say "installing fonts-wqy-microhei (printed bills)"
    apt_install fonts-wqy-microhei
  fi
  if ! command -v pdftotext >/dev/null 2>&1; then
    say "installing poppler-utils (PDF test)"
    apt_install poppler-utils
  fi
  # nginx in front of the replicas (deploy test), and its configuration check
  if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null 2>&1; then
    say "installing nginx (the deployment topology test)"
    apt_install nginx-light || apt_install nginx
  fi
  # the local S3-compatible store (moto's server, signatures checked) and the Kubernetes
  # manifest validator, from PyPI
  if ! python3 -c "import moto.server, boto3, flask" >/dev/null 2>&1; then
    say "installing moto[server] (the object-storage tests' S3)"
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1'
  fi
  if ! command -v kubernetes-validate >/dev/null 2>&1; then
    say "installing kubernetes-validate (the manifests' check)"
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.95 with rustup (https://rustup.rs)" >&2
    exit 1
  fi
}

ensure_services() {
  ensure_toolchain
  ensure_postgres
  ensure_redis
  ensure_mosquitto
  say "PostgreSQL, Redis and Mosquitto are up"
}
