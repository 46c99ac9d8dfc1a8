#!/usr/bin/env bash
# Sourced by .ci/run: installs Mosquitto (Debian's package) when missing, makes a throwaway CA, a server certificate
# and a password file, starts Mosquitto on loopback with three listeners (plain, login, TLS + login), and exports
# the URLs the fleet tests read. MOSQUITTO_PID is the broker's process id; the caller stops it.
set -euo pipefail
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="$(command -v sudo || true)"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
fi
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
MQTT_DIR="$(mktemp -d /tmp/tinytrain-mosquitto.XXXXXX)"
# Three free loopback ports in a row (another broker on the machine must not answer for ours).
port_free() { ! (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PLAIN_PORT="${TINYTRAIN_MQTT_PORT:-18830}"
if [ -z "${TINYTRAIN_MQTT_PORT:-}" ]; then
  while ! { port_free "$PLAIN_PORT" && port_free $((PLAIN_PORT + 1)) && port_free $((PLAIN_PORT + 2)); }; do
    PLAIN_PORT=$((PLAIN_PORT + 3))
  done
fi
AUTH_PORT=$((PLAIN_PORT + 1)); TLS_PORT=$((PLAIN_PORT + 2))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=tinytrain test CA" \
  -keyout "$MQTT_DIR/ca.key" -out "$MQTT_DIR/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
  -keyout "$MQTT_DIR/server.key" -out "$MQTT_DIR/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$MQTT_DIR/san.ext"
openssl x509 -req -in "$MQTT_DIR/server.csr" -CA "$MQTT_DIR/ca.crt" -CAkey "$MQTT_DIR/ca.key" -CAcreateserial -days 2 \
  -extfile "$MQTT_DIR/san.ext" -out "$MQTT_DIR/server.crt" 2>/dev/null
mosquitto_passwd -b -c "$MQTT_DIR/passwd" fleet "fleet-secret" 2>/dev/null
cat > "$MQTT_DIR/mosquitto.conf" <<CONF
user $(id -un)
per_listener_settings true
persistence false
log_dest stderr
log_type error
listener $PLAIN_PORT 127.0.0.1
allow_anonymous true
listener $AUTH_PORT 127.0.0.1
allow_anonymous false
password_file $MQTT_DIR/passwd
listener $TLS_PORT 127.0.0.1
allow_anonymous false
password_file $MQTT_DIR/passwd
cafile $MQTT_DIR/ca.crt
certfile $MQTT_DIR/server.crt
keyfile $MQTT_DIR/server.key
CONF
"$MOSQUITTO" -c "$MQTT_DIR/mosquitto.conf" 2>"$MQTT_DIR/mosquitto.log" &
MOSQUITTO_PID=$!
for _ in $(seq 50); do
  (echo > "/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break
  sleep 0.1
done
sleep 0.2
kill -0 "$MOSQUITTO_PID" 2>/dev/null || { echo "mosquitto did not start:"; cat "$MQTT_DIR/mosquitto.log"; exit 1; }
export TINYTRAIN_MQTT_URL="mqtt://127.0.0.1:$PLAIN_PORT"
export TINYTRAIN_MQTT_AUTH_URL="mqtt://fleet:fleet-secret@127.0.0.1:$AUTH_PORT"
export TINYTRAIN_MQTT_TLS_URL="mqtts://fleet:fleet-secret@localhost:$TLS_PORT"
export TINYTRAIN_MQTT_CA="$MQTT_DIR/ca.crt"
export TINYTRAIN_MOSQUITTO="$MOSQUITTO"
echo "mosquitto (pid $MOSQUITTO_PID) on 127.0.0.1:$PLAIN_PORT (plain), :$AUTH_PORT (login), :$TLS_PORT (TLS + login)"
