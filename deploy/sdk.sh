#!/usr/bin/env bash
# Generates the SDK's bindings from the built library (UniFFI, library mode):
#   deploy/sdk.sh [debug|release]  →  target/sdk/{python,kotlin,swift}/
# Python is tested by deploy/sdk-test.sh. Kotlin and Swift are generated for the apps'
# build (Gradle with the Android NDK, Xcode): no Android or Apple toolchain runs on this
# machine, so they are not compiled here.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
flag=""
[ "$profile" = "release" ] && flag="--release"
cargo build $flag --locked -p wuye-mobile -p wuye-bindgen
lib="target/$profile/libwuye_mobile.so"
for lang in python kotlin swift; do
  rm -rf "target/sdk/$lang"
  "target/$profile/uniffi-bindgen" generate --library "$lib" --language "$lang" --out-dir "target/sdk/$lang" --no-format
done
cp "$lib" target/sdk/python/
echo "bindings in target/sdk/{python,kotlin,swift}"
