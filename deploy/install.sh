#!/usr/bin/env bash
# Install neurogrip's edge runtime as a service on a Raspberry Pi (docs/deploy-pi.md, step by step).
#
#   sudo deploy/install.sh [--bundle BUNDLE] [--source SPEC] [--from SRC] [--user USER]
#
# What it sets up (each step says what it did; running it again changes only what is missing):
#   1. /opt/neurogrip/venv with neurogrip[edge] installed from SRC (default: this checkout);
#   2. the service user 'neurogrip' (groups: dialout) and USER (default: the one who ran sudo) in
#      dialout, so both can open the arm's serial port;
#   3. a udev rule: the arm's Uno/Nano (Arduino, CH340 and FTDI USB bridges) appears as
#      /dev/neurogrip-arm, group dialout, whatever ttyACMn/ttyUSBn it got;
#   4. /etc/neurogrip/trusted-keys (the workstation's public keys go there) and this Pi's own device
#      key (calibrated bundles are signed with it; its private half never leaves the Pi);
#   5. the systemd unit (checked with 'systemd-analyze verify'), enabled; /etc/default/neurogrip with
#      the arm's port and, if given, the source spec;
#   6. with --bundle: /opt/neurogrip/bundle, a symlink into /opt/neurogrip/bundles that
#      'neurogrip calibrate --install' switches atomically and 'neurogrip rollback' switches back.
#
# Options for checks and unusual set-ups:
#   --root DIR   write everything under DIR instead of / and skip what needs a running system
#                (useradd, udevadm, systemctl): the emulated Pi check and the tests use it
#   --venv DIR   use an existing virtual environment instead of creating /opt/neurogrip/venv
#   --start      also start the service now (default: enabled, started at the next boot)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root="" bundle="" source_spec="" src="$here" user="${SUDO_USER:-${USER:-}}" venv="" start=0
LIBLSL_WHEEL=${NEUROGRIP_LIBLSL_WHEEL:-mne-lsl==1.14.0}  # a registry wheel that carries liblsl for aarch64
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo ">> $*"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=${2:?--root needs a directory}; shift 2 ;;
        --bundle) bundle=${2:?--bundle needs a path}; shift 2 ;;
        --source) source_spec=${2:?--source needs a spec}; shift 2 ;;
        --from) src=${2:?--from needs a path or a package}; shift 2 ;;
        --user) user=${2:?--user needs a name}; shift 2 ;;
        --venv) venv=${2:?--venv needs a directory}; shift 2 ;;
        --start) start=1; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
system=1
[ -n "$root" ] && system=0 && root=$(mkdir -p "$root" && cd "$root" && pwd)
[ "$system" = 0 ] || [ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0 $*"

opt="$root/opt/neurogrip" etc="$root/etc"
venv=${venv:-$opt/venv}
ng="$venv/bin/neurogrip"

# 1. the virtual environment
mkdir -p "$opt"
if [ ! -x "$ng" ]; then
    say "creating $venv with neurogrip[edge] from $src"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    if [ -d "$src" ]; then "$venv/bin/pip" install --quiet "$src[edge]"; else "$venv/bin/pip" install --quiet "$src"; fi
else
    say "$venv: neurogrip is installed"
fi

# liblsl: pip's pylsl is pure Python and brings no liblsl on aarch64; take the one mne-lsl's wheel
# carries (checked by 'make pi-check' on both OS generations) into the venv, where neurogrip finds it
if ! "$venv/bin/python" -c 'from edge.sources.lsl_config import import_pylsl; import_pylsl()' >/dev/null 2>&1; then
    say "pylsl finds no liblsl here: taking it from the $LIBLSL_WHEEL wheel into $venv/lib/neurogrip/"
    tmp=$(mktemp -d)
    "$venv/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$tmp" "$LIBLSL_WHEEL" \
        || die "could not download $LIBLSL_WHEEL to take liblsl from; install liblsl yourself (docs/deploy-pi.md, step 3)"
    mkdir -p "$venv/lib/neurogrip"
    "$venv/bin/python" - "$tmp" "$venv/lib/neurogrip/liblsl.so" <<'PY'
import pathlib, sys, zipfile
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for whl in src.glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if "/liblsl" in n and ".so" in n]
        if names:
            dst.write_bytes(z.read(names[0]))
if not dst.is_file():
    sys.exit("no liblsl in the wheel")
PY
    rm -rf "$tmp"
    "$venv/bin/python" -c 'import edge.sources.lsl_config as c; c.import_pylsl()' || die "liblsl from $LIBLSL_WHEEL does not load"
fi

# 2. users and groups
if [ "$system" = 1 ]; then
    if ! id neurogrip >/dev/null 2>&1; then
        say "creating the service user neurogrip"
        useradd --system --user-group --groups dialout --home-dir /var/lib/neurogrip --no-create-home \
            --shell /usr/sbin/nologin neurogrip
    fi
    if [ -n "$user" ] && [ "$user" != root ] && ! id -nG "$user" | tr ' ' '\n' | grep -qx dialout; then
        say "adding $user to group dialout (log in again for it to apply)"
        usermod -aG dialout "$user"
    fi
fi

# 3. a stable name for the arm's serial port
mkdir -p "$etc/udev/rules.d"
cat > "$etc/udev/rules.d/99-neurogrip-arm.rules" <<'RULES'
# neurogrip: the arm's microcontroller as /dev/neurogrip-arm (deploy/install.sh). One arm per Pi: with
# several boards of these kinds, name yours by serial number instead (docs/deploy-pi.md).
SUBSYSTEM=="tty", ATTRS{idVendor}=="2341", SYMLINK+="neurogrip-arm", GROUP="dialout", MODE="0660"
SUBSYSTEM=="tty", ATTRS{idVendor}=="2a03", SYMLINK+="neurogrip-arm", GROUP="dialout", MODE="0660"
SUBSYSTEM=="tty", ATTRS{idVendor}=="1a86", ATTRS{idProduct}=="7523", SYMLINK+="neurogrip-arm", GROUP="dialout", MODE="0660"
SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", SYMLINK+="neurogrip-arm", GROUP="dialout", MODE="0660"
RULES
say "udev rule: $etc/udev/rules.d/99-neurogrip-arm.rules (the arm appears as /dev/neurogrip-arm)"
if [ "$system" = 1 ] && command -v udevadm >/dev/null 2>&1; then
    udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || true
fi

# 4. trust: the workstation's keys, this Pi's own device key
mkdir -p "$etc/neurogrip/trusted-keys" "$etc/neurogrip/device-keys"
keydir="$etc/neurogrip/device-key"
if [ ! -f "$keydir/device.pem" ]; then
    say "making this Pi's device key in $keydir (it signs bundles calibrated here; it never leaves the Pi)"
    "$ng" keygen --device --out "$keydir" >/dev/null
fi
install -m 644 "$keydir/device.pub" "$etc/neurogrip/device-keys/device.pub"
[ -n "$(ls -A "$etc/neurogrip/trusted-keys")" ] || \
    say "no workstation key in $etc/neurogrip/trusted-keys yet: bundles load unsigned until you copy one there (docs/bundle-signing.md)"

# 5. the service
mkdir -p "$etc/systemd/system" "$etc/default"
unit="$etc/systemd/system/neurogrip.service"
sed -e "s|/opt/neurogrip/venv/bin/neurogrip|$ng|" -e "s|NEUROGRIP_BUNDLE=/opt/neurogrip/bundle|NEUROGRIP_BUNDLE=$opt/bundle|" \
    "$here/deploy/neurogrip.service" > "$unit"
chmod 644 "$unit"
defaults="$etc/default/neurogrip"
if [ ! -f "$defaults" ]; then
    { echo "# neurogrip's service settings (deploy/neurogrip.service reads them; docs/deploy-pi.md)"
      echo "NEUROGRIP_ARM=/dev/neurogrip-arm"
      [ -n "$source_spec" ] && echo "NEUROGRIP_SOURCE=$source_spec"
      true; } > "$defaults"
    say "settings: $defaults"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify "$unit" || die "systemd-analyze verify found a problem in $unit"
    say "systemd-analyze verify: $unit is valid"
fi
if [ "$system" = 1 ]; then
    systemctl daemon-reload
    systemctl enable neurogrip.service
    [ "$start" = 1 ] && systemctl restart neurogrip.service
fi

# 6. the bundle the service runs
if [ -n "$bundle" ]; then
    # checked against this installation's trust store, as the service will check it
    if [ -n "$(ls -A "$etc/neurogrip/trusted-keys")" ]; then
        export NEUROGRIP_TRUSTED_KEYS="$etc/neurogrip/trusted-keys" NEUROGRIP_DEVICE_KEYS="$etc/neurogrip/device-keys"
    fi
    NEUROGRIP_BUNDLE_LINK="$opt/bundle" "$ng" install-bundle "$bundle"
fi
# Ownership, last (so what step 6 made is included): the person who calibrates signs with the device
# key and switches the bundle link; the code (the venv, which holds the signature checks) stays root's.
mkdir -p "$opt/bundles"
if [ "$system" = 1 ] && [ -n "$user" ] && [ "$user" != root ]; then
    chown -R "$user" "$keydir" "$opt/bundles"
    chown "$user" "$opt"   # the directory, for the link's atomic rename; not the venv inside it
    chown -h "$user" "$opt/bundle" "$opt/bundle.previous" 2>/dev/null || true
fi

say "done. Next: neurogrip doctor --bundle $opt/bundle; 'journalctl -u neurogrip -f' for the service's log"
