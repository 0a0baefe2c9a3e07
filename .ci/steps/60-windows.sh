#!/usr/bin/env bash
# The `signal` feature on Windows (issue 9, point 6). Cross-checked for x86_64-pc-windows-gnu:
#   1. clippy of the core's library with `signal` (a check needs no linker);
#   2. the Windows tests (tests/tests/signal_windows.rs: each scenario raises Ctrl-C in a
#      console of its own) built with mingw-w64 and run under wine64. Wine 8 (Debian 12) lacks
#      bcryptprimitives.dll, which Rust's std imports (`ProcessPrng`, for random seeds): a
#      stand-in of ten lines of C, built here, gives it from advapi32's RtlGenRandom. Wine 8
#      cannot raise Ctrl-Break and ends a process with 0 on Ctrl-C: the tests allow for that
#      under wine only.
# `WINDOWS_STEP_NO_WINE=1` keeps step 1 only.
set -euo pipefail
cd "$(dirname "$0")/../.."

target=x86_64-pc-windows-gnu
rustup target add "$target"

cargo clippy -p go-context --features signal --target "$target" --lib -- -D warnings

if [ "${WINDOWS_STEP_NO_WINE:-}" = 1 ]; then
  echo "wine run skipped (WINDOWS_STEP_NO_WINE=1)"
  exit 0
fi

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! [ -x /usr/lib/wine/wine64 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gcc-mingw-w64-x86-64 wine64 >/dev/null
fi
wine=/usr/lib/wine/wine64

# A wine prefix of our own, in the target dir (created on first use, ~15 s).
export WINEPREFIX="$PWD/target/wine-prefix" WINEDEBUG=-all
mkdir -p "$WINEPREFIX"
"$wine" cmd /c exit >/dev/null 2>&1 || true
system32="$WINEPREFIX/drive_c/windows/system32"
if ! [ -e /usr/lib/x86_64-linux-gnu/wine/x86_64-windows/bcryptprimitives.dll ] &&
  ! [ -e "$system32/bcryptprimitives.dll" ]; then
  stub="$(mktemp -d)"
  cat >"$stub/bcryptprimitives.c" <<'C'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
C
  x86_64-w64-mingw32-gcc -O2 -shared -o "$system32/bcryptprimitives.dll" \
    "$stub/bcryptprimitives.c" -ladvapi32
  rm -r "$stub"
fi

CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" timeout 600 \
  cargo test --target "$target" -p context-tests --test signal_windows
# Wine's server ends by itself a few seconds after its last process: wait for it.
/usr/lib/wine/wineserver -w || true
