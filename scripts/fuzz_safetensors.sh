#!/usr/bin/env bash
# Fuzzes the safetensors reader (tests/fuzz/fuzz_safetensors.cpp) with libFuzzer, ASan and UBSan.
# Usage: scripts/fuzz_safetensors.sh [seconds=60]. Needs clang++ (Debian package: clang) and
# python3; installs nothing. Work files (binary, seeds, corpus, crash inputs) go to
# $STRATA_FUZZ_DIR (default: ${TMPDIR:-/tmp}/strata-fuzz-safetensors). Exits non-zero on a crash.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${STRATA_FUZZ_DIR:-${TMPDIR:-/tmp}/strata-fuzz-safetensors}"
cxx="${STRATA_FUZZ_CXX:-clang++}"

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz_safetensors: $cxx not found (Debian: apt-get install clang)" >&2
  exit 2
fi
mkdir -p "$work/corpus" "$work/seeds" "$work/crashes"

echo "fuzz_safetensors: building $work/fuzz_safetensors"
# -fno-sanitize-recover: UBSan otherwise prints and carries on, and the run would count as clean.
"$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I "$root/include" "$root/tests/fuzz/fuzz_safetensors.cpp" -o "$work/fuzz_safetensors"

# Seeds: a few valid files and a few broken ones, written independently of the C++ writer.
python3 - "$work/seeds" <<'PY'
import json, os, struct, sys

out = sys.argv[1]

def tensor_file(tensors, metadata=None, pad=True):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data

def raw_file(header_text, data=b""):
    text = header_text.encode()
    return struct.pack("<Q", len(text)) + text + data

seeds = {
    "empty": tensor_file([]),
    "resnet_like": tensor_file(
        [("conv1.weight", "F32", [2, 1, 1, 2], struct.pack("<4f", 1.5, -2.0, 0.25, 3.0)),
         ("bn1.running_mean", "F16", [2], struct.pack("<2H", 0x3E00, 0x7BFF)),
         ("bn1.num_batches_tracked", "I64", [], struct.pack("<q", 7)),
         ("fc.weight", "BF16", [1, 3], struct.pack("<3H", 0x3FC0, 0xC000, 0x7F80)),
         ("fc.bias", "F64", [1], struct.pack("<d", 1e300))],
        metadata={"format": "pt"}),
    "all_dtypes": tensor_file(
        [(d, d, [2], b"\x01" * (2 * s)) for d, s in
         [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2),
          ("I8", 1), ("U8", 1), ("BOOL", 1), ("U64", 8), ("U32", 4), ("U16", 2),
          ("F8_E4M3", 1), ("F8_E5M2", 1)]]),
    "zero_dims": tensor_file([("e", "F32", [0, 4], b""), ("s", "F32", [], b"\0\0\x80\x3f")],
                             pad=False),
    "duplicate": raw_file('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                          '"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
    "truncated": raw_file('{"w":{"dtype":"F32","shape":[25],"data_offsets":[0,100]}}', b"\0" * 64),
    "overlap": raw_file('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
                        '"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}', b"\0" * 4),
    "bad_types": raw_file('{"x":{"dtype":1,"shape":[-1,1.5],"data_offsets":[9,2,3]},'
                          '"__metadata__":{"k":1}}'),
}
for name, data in seeds.items():
    with open(os.path.join(out, name + ".safetensors"), "wb") as f:
        f.write(data)
    # The target also reads each input as "header NUL data" (see the fuzz target's comment).
    (n,) = struct.unpack("<Q", data[:8])
    with open(os.path.join(out, name + ".framed"), "wb") as f:
        f.write(data[8:8 + n] + b"\0" + data[8 + n:])
PY

cat > "$work/safetensors.dict" <<'DICT'
"\"dtype\""
"\"shape\""
"\"data_offsets\""
"\"__metadata__\""
"\"F64\""
"\"F32\""
"\"F16\""
"\"BF16\""
"\"I64\""
"\"I32\""
"\"I16\""
"\"I8\""
"\"U8\""
"\"BOOL\""
"\"U64\""
"\"F8_E4M3\""
"18446744073709551615"
"9223372036854775807"
"4294967296"
"-1"
DICT

echo "fuzz_safetensors: fuzzing for ${seconds}s (corpus: $work/corpus)"
status=0
"$work/fuzz_safetensors" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=8192 -dict="$work/safetensors.dict" -artifact_prefix="$work/crashes/" \
  -print_final_stats=1 -print_funcs=0 "$work/corpus" "$work/seeds" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz_safetensors: FAILED (exit $status); reproducer(s) in $work/crashes/:" >&2
  ls -l "$work/crashes/" >&2
  exit "$status"
fi
echo "fuzz_safetensors: clean"
