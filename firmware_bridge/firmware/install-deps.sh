#!/bin/sh
# Installs the Debian packages the firmware builds need, only when something is missing.
# Idempotent: a machine that has everything runs no apt-get at all.
#   gcc-avr avr-libc     ATmega328P firmware (make avr)
#   simavr libsimavr-dev libelf-dev   the simulated Uno (make sim)
#   clang libclang-rt-14-dev          libFuzzer (make fuzz)
set -eu
missing=""
command -v cc >/dev/null 2>&1 || missing="$missing gcc"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v avr-gcc >/dev/null 2>&1 || missing="$missing gcc-avr"
[ -f /usr/lib/avr/include/avr/io.h ] || missing="$missing avr-libc"
[ -f /usr/include/simavr/sim_avr.h ] || missing="$missing libsimavr-dev"
[ -f /usr/include/simavr/parts/uart_pty.h ] || missing="$missing libsimavr-dev"
[ -f /usr/include/libelf.h ] || [ -f /usr/include/gelf.h ] || missing="$missing libelf-dev"
command -v clang >/dev/null 2>&1 || missing="$missing clang"
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 \
    || missing="$missing libclang-rt-14-dev"
if [ -z "$missing" ]; then
    exit 0
fi
# shellcheck disable=SC2086
pkgs=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
echo "firmware_bridge: installing Debian packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "not root and no sudo: install them yourself: apt-get install -y $pkgs" >&2; exit 1; fi
fi
$SUDO apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $pkgs
