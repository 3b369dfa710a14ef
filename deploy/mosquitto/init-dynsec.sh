#!/usr/bin/env bash
# Creates the dynamic-security file of the production broker once, with wuye's account as its
# administrator. Usage (the password is asked for, or taken from WUYE_MQTT_PASSWORD):
#   deploy/mosquitto/init-dynsec.sh /path/to/mosquitto/data/dynamic-security.json [wuye-api]
# With compose: docker compose -f deploy/compose.yaml run --rm mosquitto \
#   mosquitto_ctrl dynsec init /mosquitto/data/dynamic-security.json wuye-api
set -euo pipefail
file=${1:?the dynamic-security.json to create}
user=${2:-wuye-api}
if [ -e "$file" ]; then
  echo "$file exists: nothing to do" >&2
  exit 0
fi
if [ -n "${WUYE_MQTT_PASSWORD:-}" ]; then
  mosquitto_ctrl dynsec init "$file" "$user" "$WUYE_MQTT_PASSWORD"
else
  mosquitto_ctrl dynsec init "$file" "$user"
fi
echo "created $file; run wuye with WUYE_MQTT_URL=mqtt://$user:<password>@<broker>:1883 and WUYE_MQTT_DYNSEC=true"
