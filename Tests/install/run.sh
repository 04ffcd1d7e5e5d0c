#!/usr/bin/env bash
# `make install` into a staging DESTDIR, then build Examples/crypto_example.c the way a user
# would — with pkg-config and the installed header only — and run it.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d /tmp/tdnskrs-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
fails=0
check() { if "$@"; then echo "PASS: $name"; else echo "FAIL: $name"; fails=$((fails + 1)); fi; }

name="make install PREFIX=/usr/local DESTDIR=<stage>"
quiet_install() { make -s -C "$root" install PREFIX=/usr/local DESTDIR="$stage" >/dev/null; }
check quiet_install

version=$(sed -nE 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$root/Makefile")
name="installed: library $version with soname links, headers, tdnskrs.pc, DLZ and Knot plugins"
check test -n "$version" -a -f "$stage/usr/local/lib/libtdnskrs.so.$version" -a -L "$stage/usr/local/lib/libtdnskrs.so.0" \
    -a -L "$stage/usr/local/lib/libtdnskrs.so" -a -f "$stage/usr/local/include/tdnskrs/tdnskrs.h" \
    -a -f "$stage/usr/local/lib/pkgconfig/tdnskrs.pc" -a -f "$stage/usr/lib/bind/dlz_tdnskrs.so" \
    -a -f "$stage$(pkg-config --variable=module_instdir knotd)/mod-tdnskrs.so"

name="installed: man pages tdns-kdc(8), tdns-krs(8), tdnskrs-nsd(8), tdnskrs.conf(5), libtdnskrs(3)"
man_dir="$stage/usr/local/share/man"
check test -f "$man_dir/man8/tdns-kdc.8" -a -f "$man_dir/man8/tdns-krs.8" -a -f "$man_dir/man8/tdnskrs-nsd.8" \
    -a -f "$man_dir/man5/tdnskrs.conf.5" -a -f "$man_dir/man3/libtdnskrs.3"

export PKG_CONFIG_PATH="$stage/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage"
name="pkg-config --cflags --libs tdnskrs"
check pkg-config --exists tdnskrs

name="pkg-config --modversion tdnskrs is the Makefile's $version"
check [ "$(pkg-config --modversion tdnskrs)" = "$version" ]

name="cc Examples/crypto_example.c \$(pkg-config --cflags --libs tdnskrs)"
check ${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$stage/crypto_example" "$root/Examples/crypto_example.c" \
    $(pkg-config --cflags --libs tdnskrs)

name="crypto_example runs against the installed library"
out=$(LD_LIBRARY_PATH="$stage/usr/local/lib" "$stage/crypto_example" 2>&1)
check grep -q 'hpke: 73-byte ciphertext, decrypted "DNSSEC keys travel safely"' <<<"$out"

[ "$fails" -eq 0 ]
