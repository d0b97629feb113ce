#!/usr/bin/env bash
# A private Keycloak for development and tests: Maven Central's distribution, `start-dev`
# (HTTP on the loopback interface, H2 database in the distribution's data/ folder).
#
#   infra/keycloak/keycloak.sh start    download and unpack on first use, start, wait until ready
#   infra/keycloak/keycloak.sh stop
#   infra/keycloak/keycloak.sh status   exit 0 ready, 1 starting or something else on the port, 3 not running
#   infra/keycloak/keycloak.sh env      print the PERRON_KEYCLOAK_* variables that point at it
#
# The bootstrap administrator of the master realm is `admin`; its password is generated at
# the first start into $PERRON_KEYCLOAK_HOME/admin-password (mode 600). Development and tests
# only: never put real accounts in it.
#
# Until a usable Java has been found this script uses shell builtins only, so that a machine
# without Java gets the install instruction and nothing else happens.
set -euo pipefail

case "${BASH_SOURCE[0]}" in
  */*) HERE=${BASH_SOURCE[0]%/*} ;;
  *) HERE=. ;;
esac
ROOT=$(cd "$HERE/../.." && pwd)
HOME_DIR=${PERRON_KEYCLOAK_HOME:-$ROOT/.perron/keycloak}
PORT=${PERRON_KEYCLOAK_PORT:-58080}
MANAGEMENT_PORT=${PERRON_KEYCLOAK_MANAGEMENT_PORT:-59000}
VERSION=${PERRON_KEYCLOAK_VERSION:-26.7.3}
JVM_ROOT=${PERRON_KEYCLOAK_JVM_ROOT:-/usr/lib/jvm}
MAVEN_REPOSITORY=${PERRON_KEYCLOAK_MAVEN_REPOSITORY:-https://repo1.maven.org/maven2}
HEAP=${PERRON_KEYCLOAK_HEAP:--Xms128m -Xmx768m}
READY_TIMEOUT=${PERRON_KEYCLOAK_READY_TIMEOUT:-180}
THEMES=$ROOT/infra/keycloak/themes

usage() { echo "usage: $0 start|stop|status|env" >&2; exit 2; }
fail() { echo "$*" >&2; exit 1; }

check_settings() {
  local name value
  for name in PORT MANAGEMENT_PORT READY_TIMEOUT; do
    value=${!name}
    if [[ ! $value =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
      echo "PERRON_KEYCLOAK_$name must be a number between 1 and 65535, not '$value'." >&2; exit 2
    fi
  done
  if ((PORT == MANAGEMENT_PORT)); then
    echo "PERRON_KEYCLOAK_PORT and PERRON_KEYCLOAK_MANAGEMENT_PORT must differ (both are $PORT)." >&2; exit 2
  fi
  if [[ ! $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "PERRON_KEYCLOAK_VERSION must look like 26.7.3, not '$VERSION'." >&2; exit 2
  fi
}

check_settings
DIST=$HOME_DIR/keycloak-$VERSION
ZIP=$HOME_DIR/keycloak-quarkus-dist-$VERSION.zip
ZIP_URL=$MAVEN_REPOSITORY/org/keycloak/keycloak-quarkus-dist/$VERSION/keycloak-quarkus-dist-$VERSION.zip
PID_FILE=$HOME_DIR/keycloak.pid
PORTS_FILE=$HOME_DIR/keycloak.ports
LOG_FILE=$HOME_DIR/keycloak.log
PASSWORD_FILE=$HOME_DIR/admin-password
URL=http://127.0.0.1:$PORT
READY_URL=http://127.0.0.1:$MANAGEMENT_PORT/health/ready

# Java ------------------------------------------------------------------------------------

java_major() {  # the major version of the Java at $1, or nothing (builtins only)
  local first
  [ -x "$1" ] || return 0
  { IFS= read -r first || true; } < <("$1" -version 2>&1)
  if [[ $first =~ version\ \"([0-9]+)(\.([0-9]+))? ]]; then
    if [ "${BASH_REMATCH[1]}" = 1 ]; then echo "${BASH_REMATCH[3]}"; else echo "${BASH_REMATCH[1]}"; fi
  fi
}

supported_java() { case "$1" in 17 | 21 | 25) return 0 ;; *) return 1 ;; esac; }

find_java() {  # JAVA_HOME, then `java` on PATH, then the newest under $JVM_ROOT
  local candidate major best="" best_major=0 found=""
  if [ -n "${JAVA_HOME:-}" ]; then
    major=$(java_major "$JAVA_HOME/bin/java")
    if supported_java "$major"; then echo "$JAVA_HOME/bin/java"; return; fi
    found+=" $JAVA_HOME/bin/java (${major:-unusable})"
  fi
  if candidate=$(type -P java 2>/dev/null) && [ -n "$candidate" ]; then
    major=$(java_major "$candidate")
    if supported_java "$major"; then echo "$candidate"; return; fi
    found+=" $candidate (${major:-unusable})"
  fi
  for candidate in "$JVM_ROOT"/*/bin/java; do
    [ -x "$candidate" ] || continue
    major=$(java_major "$candidate")
    if supported_java "$major"; then
      if ((major > best_major)); then best=$candidate; best_major=$major; fi
    else
      found+=" $candidate (${major:-unusable})"
    fi
  done
  if [ -n "$best" ]; then echo "$best"; return; fi
  {
    echo "Keycloak $VERSION needs Java 17, 21 or 25, and none was found"
    echo "(looked at \$JAVA_HOME, 'java' on PATH and $JVM_ROOT/*/bin/java)."
    [ -z "$found" ] || echo "Found, but not usable:$found"
    echo "On Debian 12 install it with: sudo apt-get install openjdk-17-jre-headless"
  } >&2
  exit 1
}

require_tools() {
  local tool missing=""
  for tool in curl sha1sum unzip setsid flock; do
    command -v "$tool" >/dev/null || missing+=" $tool"
  done
  [ -z "$missing" ] || fail "Missing tools:$missing. On Debian: sudo apt-get install curl unzip coreutils util-linux"
}

# Distribution ----------------------------------------------------------------------------

verified_zip() {  # download the zip (unless present) and check it against Maven Central's SHA-1
  local expected actual
  mkdir -p "$HOME_DIR"
  if [ ! -s "$ZIP.sha1" ]; then
    curl -fsSL --retry 3 -o "$ZIP.sha1.part" "$ZIP_URL.sha1" ||
      fail "Could not download $ZIP_URL.sha1 (network? PERRON_KEYCLOAK_MAVEN_REPOSITORY?)"
    mv "$ZIP.sha1.part" "$ZIP.sha1"
  fi
  read -r expected _ < "$ZIP.sha1" || true
  [[ $expected =~ ^[0-9a-f]{40}$ ]] || { rm -f "$ZIP.sha1"; fail "$ZIP_URL.sha1 is not a SHA-1 checksum."; }
  if [ ! -s "$ZIP" ]; then
    local started size
    started=$(date +%s%N)
    echo "Downloading $ZIP_URL…"
    curl -fL --retry 3 --progress-bar -o "$ZIP.part" "$ZIP_URL" || { rm -f "$ZIP.part"; fail "Download failed."; }
    mv "$ZIP.part" "$ZIP"
    size=$(stat -c %s "$ZIP")
    echo "Downloaded $((size / 1048576)) MB in $(elapsed "$started") s."
  fi
  read -r actual _ < <(sha1sum "$ZIP")
  if [ "$actual" != "$expected" ]; then
    rm -f "$ZIP"
    fail "$ZIP has SHA-1 $actual, Maven Central publishes $expected: removed it, run start again."
  fi
}

ensure_dist() {
  [ -x "$DIST/bin/kc.sh" ] && return
  verified_zip
  local unpack=$HOME_DIR/.unpack-$$
  rm -rf "$unpack"
  mkdir -p "$unpack"
  unzip -q "$ZIP" -d "$unpack"
  [ -x "$unpack/keycloak-$VERSION/bin/kc.sh" ] || { rm -rf "$unpack"; fail "$ZIP has no keycloak-$VERSION/bin/kc.sh."; }
  mv "$unpack/keycloak-$VERSION" "$DIST"
  rm -rf "$unpack"
  echo "Unpacked Keycloak $VERSION into $DIST."
}

deploy_themes() {  # a link, so that the repository's themes are live (start-dev caches no theme)
  local theme target
  for theme in "$THEMES"/*/; do
    theme=${theme%/}
    target=$DIST/themes/${theme##*/}
    if [ -L "$target" ] && [ "$(readlink "$target")" = "$theme" ]; then continue; fi
    rm -rf "$target"
    ln -s "$theme" "$target"
  done
}

ensure_admin_password() {
  if [ -s "$PASSWORD_FILE" ]; then return; fi
  if [ -d "$DIST/data/h2" ]; then
    fail "$PASSWORD_FILE is missing but Keycloak's data already exists, so its admin password is unknown.
Remove $DIST/data to start from an empty Keycloak (every realm and user in it is lost)."
  fi
  (
    umask 077
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$PASSWORD_FILE.part"
    mv "$PASSWORD_FILE.part" "$PASSWORD_FILE"
  )
  chmod 600 "$PASSWORD_FILE"
}

# Process ---------------------------------------------------------------------------------

elapsed() {  # seconds since $1 (from date +%s%N), one decimal
  local tenths=$((($(date +%s%N) - $1) / 100000000))
  echo "$((tenths / 10)).$((tenths % 10))"
}

launcher_pid() {  # the pid in the pid file when that process is our Keycloak, else nothing
  local pid cmdline
  [ -s "$PID_FILE" ] || return 0
  read -r pid < "$PID_FILE" || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 0
  case "$cmdline" in *"$DIST/"*) echo "$pid" ;; esac
}

running_ports() {  # "<port> <management port>" of the Keycloak started from this home
  local ports=""
  [ ! -s "$PORTS_FILE" ] || read -r ports < "$PORTS_FILE" || true
  echo "$ports"
}

is_ready() { curl -fsS -m 2 "$READY_URL" 2>/dev/null | grep -q '"UP"'; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_until_ready() {  # $1: pid, $2: start time, $3: "owned" when this call started it
  local pid=$1 started=$2 owned=${3:-} deadline=$((SECONDS + READY_TIMEOUT))
  printf 'Waiting for Keycloak to be ready'
  until is_ready; do
    if [ ! -d "/proc/$pid" ]; then
      echo
      echo "Keycloak exited while starting. The end of $LOG_FILE:" >&2
      tail -n 30 "$LOG_FILE" >&2
      rm -f "$PID_FILE" "$PORTS_FILE"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo
      echo "Keycloak was not ready after $READY_TIMEOUT s. The end of $LOG_FILE:" >&2
      tail -n 30 "$LOG_FILE" >&2
      if [ "$owned" = owned ]; then
        stop >/dev/null
        echo "Stopped it. Set PERRON_KEYCLOAK_READY_TIMEOUT to wait longer on a slow machine." >&2
      else
        echo "It was started by an earlier call and is left running (stop it with $0 stop)." >&2
      fi
      exit 1
    fi
    printf '.'
    sleep 1
  done
  echo
  echo "Keycloak is ready on $URL after $(elapsed "$started") s (pid $pid, log $LOG_FILE)."
}

start() {
  local java pid started port
  java=$(find_java)
  require_tools
  mkdir -p "$HOME_DIR"
  exec 9>"$HOME_DIR/.start.lock"
  flock 9  # a second `start` waits for the first, then finds Keycloak running
  pid=$(launcher_pid)
  if [ -z "$pid" ] && is_ready; then
    echo "Keycloak is already running and ready on $URL."; return
  fi
  if [ -n "$pid" ]; then
    if [ "$(running_ports)" != "$PORT $MANAGEMENT_PORT" ]; then
      fail "The Keycloak of $HOME_DIR already runs (pid $pid) with ports '$(running_ports)', not $PORT $MANAGEMENT_PORT.
Stop it first ($0 stop) or use another PERRON_KEYCLOAK_HOME."
    fi
    if is_ready; then echo "Keycloak is already running and ready on $URL (pid $pid)."; return; fi
    echo "Keycloak is already starting (pid $pid)."
    wait_until_ready "$pid" "$(date +%s%N)"
    return
  fi
  for port in "$PORT" "$MANAGEMENT_PORT"; do
    if port_taken "$port"; then
      fail "Port $port on 127.0.0.1 is used by another program (set PERRON_KEYCLOAK_PORT / PERRON_KEYCLOAK_MANAGEMENT_PORT)."
    fi
  done
  ensure_dist
  deploy_themes
  ensure_admin_password
  [ ! -f "$LOG_FILE" ] || mv -f "$LOG_FILE" "$LOG_FILE.1"
  rm -f "$PID_FILE"
  echo "$PORT $MANAGEMENT_PORT" > "$PORTS_FILE"
  started=$(date +%s%N)
  echo "Starting Keycloak $VERSION with $java…"
  JAVA=$java JAVA_OPTS_KC_HEAP=$HEAP \
    KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=$(<"$PASSWORD_FILE") \
    setsid nohup sh -c 'echo $$ > "$0"; exec "$@"' "$PID_FILE" "$DIST/bin/kc.sh" start-dev \
    --http-host 127.0.0.1 --http-port "$PORT" --http-management-port "$MANAGEMENT_PORT" \
    --health-enabled=true >"$LOG_FILE" 2>&1 </dev/null 9>&- &
  for _ in $(seq 50); do [ -s "$PID_FILE" ] && break; sleep 0.1; done
  pid=$(launcher_pid)
  [ -n "$pid" ] || { tail -n 30 "$LOG_FILE" >&2; fail "Keycloak did not start."; }
  wait_until_ready "$pid" "$started" owned
}

stop() {
  local pid
  pid=$(launcher_pid)
  if [ -z "$pid" ]; then
    rm -f "$PID_FILE" "$PORTS_FILE"
    if port_taken "$PORT"; then
      fail "Something listens on 127.0.0.1:$PORT but was not started from $HOME_DIR: not stopping it."
    fi
    echo "Keycloak is not running."; return
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 300); do [ -d "/proc/$pid" ] || break; sleep 0.2; done
  if [ -d "/proc/$pid" ]; then
    echo "Keycloak did not stop within 60 s; killing it." >&2
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE" "$PORTS_FILE"
  echo "Keycloak stopped."
}

status() {
  local pid
  pid=$(launcher_pid)
  if [ -n "$pid" ] && [ "$(running_ports)" != "$PORT $MANAGEMENT_PORT" ]; then
    echo "The Keycloak of $HOME_DIR runs (pid $pid) with ports '$(running_ports)', not $PORT $MANAGEMENT_PORT."
    return 1
  fi
  if is_ready; then
    if [ -n "$pid" ]; then
      echo "Keycloak is running and ready on $URL (pid $pid)."
    else
      echo "Keycloak is running and ready on $URL (not started from $HOME_DIR)."
    fi
    return 0
  fi
  if [ -n "$pid" ]; then echo "Keycloak is running (pid $pid) but not ready yet."; return 1; fi
  if port_taken "$PORT"; then
    echo "Something listens on $URL, but $READY_URL does not answer: not a Keycloak started from $HOME_DIR."
    return 1
  fi
  echo "Keycloak is not running on $URL."
  return 3
}

env_vars() {
  echo "export PERRON_KEYCLOAK_URL=$URL"
  echo "export PERRON_KEYCLOAK_ADMIN_USERNAME=admin"
  if [ -s "$PASSWORD_FILE" ]; then
    local password
    password=$(<"$PASSWORD_FILE")
    printf 'export PERRON_KEYCLOAK_ADMIN_PASSWORD=%q\n' "$password"
  else
    echo "# No admin password yet ($PASSWORD_FILE): run $0 start first."
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_vars ;;
  *) usage ;;
esac
