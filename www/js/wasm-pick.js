// Which wasm build a worker loads: the relaxed-SIMD build (www/pkg-relaxed: fused multiply-add in
// the CPU engine's hot loops) where the browser validates a relaxed-SIMD instruction and the build
// is there, else the simd128 build (www/pkg). Every worker of a page picks the same way, so a
// pool's workers run the same arithmetic.
//
// Measured (issue 18, kern18; sort-ref, one worker, Chromium 156 on AMD EPYC, BENCHMARKS.md): with
// the same 4 × 8 tiled matrix product in both builds (src/cpu/kernels/tiled.rs), the relaxed build
// ran 1–7% faster than the simd128 build in the same runs, so it stays preferred. (In node 20's
// older V8 it was ~3% slower; AMD's Zen cores issue a vector multiply and a vector add per cycle
// each, so fusing them gains little there. Intel cores were not measured.)

// () -> v128 { f32x4.relaxed_madd(v128.const 0, v128.const 0, v128.const 0) }: valid only where
// relaxed SIMD is supported.
function probeBytes() {
  const zero = new Array(16).fill(0);
  const v128 = [0xfd, 0x0c, ...zero];
  const body = [0x00, ...v128, ...v128, ...v128, 0xfd, 0x85, 0x02, 0x0b];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x0a, body.length + 2, 0x01, body.length, ...body, // its code
  ]);
}

/** Whether this browser runs relaxed SIMD (WebAssembly.validate of a tiny module using it). */
export function hasRelaxedSimd() {
  try {
    return WebAssembly.validate(probeBytes());
  } catch {
    return false;
  }
}

let loading = null;

/**
 * Loads and initialises the chosen build, once per worker: `{mod, build}` with `build` 'relaxed' or
 * 'simd128'. Every module of a worker that calls into wasm must use this module, not import a build.
 */
export function loadWasmBuild() {
  loading ??= pick();
  return loading;
}

async function pick() {
  let mod = null;
  let build = 'simd128';
  if (hasRelaxedSimd()) {
    mod = await import('../pkg-relaxed/toyformer.js').catch(() => null);
    if (mod) build = 'relaxed';
  }
  mod ??= await import('../pkg/toyformer.js');
  await mod.default();
  return { mod, build };
}

/** The chosen build's module, initialised (Session, ShardWorker, ...). */
export async function loadWasm() {
  return (await loadWasmBuild()).mod;
}
