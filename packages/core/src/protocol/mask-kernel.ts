/**
 * A WebAssembly SIMD kernel for masking large payloads (RFC 6455 §5.3). Measured on
 * Node 20 x64: about twice the speed of the 32-bit JavaScript loop from 4 KiB up, even
 * with the copy into and out of its memory, and slower below that (bench figures in
 * bench/README.md). Source: packages/core/wasm/mask-simd.wat; the bytes below are that
 * file compiled with wabt (a test checks that they match).
 */
const KERNEL_WASM =
  'AGFzbQEAAAABBgFgAn9/AAMCAQAFAwEAAQcRAgZtZW1vcnkCAARtYXNrAAAKmwEBmAEDAX8BewF/IAH9ESEDIABBQHEhBAJAA0AgAiAETw0BIAIgAv0ABAAgA/1R/QsEACACIAL9AAQQIAP9Uf0LBBAgAiAC/QAEICAD/VH9CwQgIAIgAv0ABDAgA/1R/QsEMCACQcAAaiECDAALCwJAA0AgAiAATw0BIAIgAi0AACABIAJBA3FBA3R2czoAACACQQFqIQIMAAsLCw==';

/** Payloads from this size up are masked by the kernel (below it the JS loop is faster). */
export const KERNEL_MIN_LENGTH = 4096;
/** The kernel's memory is one 64 KiB page: larger payloads go through it in blocks. */
const BLOCK = 65536;

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

interface Kernel {
  /** The kernel's memory, as a Buffer over the same bytes. */
  memory: Buffer;
  mask: (length: number, key: number) => void;
}

function load(): Kernel | undefined {
  // Absent with --jitless or where WebAssembly is turned off: the JS loop does the work.
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || process.env.WSKIT_NO_WASM === '1') return undefined;
  try {
    const instance = new wasm.Instance(new wasm.Module(Buffer.from(KERNEL_WASM, 'base64')));
    const memory = instance.exports.memory as { buffer: ArrayBuffer };
    const mask = instance.exports.mask as Kernel['mask'];
    return { memory: Buffer.from(memory.buffer), mask };
  } catch {
    return undefined; // no SIMD support: the JS loop does the work
  }
}

const kernel = load();

/** Whether the WebAssembly kernel is in use (false: every payload takes the JS loop). */
export const kernelAvailable = kernel !== undefined;

/**
 * XORs `length` bytes of `source` from `sourceStart` into `target` at `targetStart` with
 * the key (mask bytes in little-endian order: byte 0 of the data takes the low byte).
 * Source and target may be the same bytes. Call only when kernelAvailable.
 */
export function maskWithKernel(
  source: Uint8Array,
  sourceStart: number,
  target: Uint8Array,
  targetStart: number,
  length: number,
  key: number,
): void {
  const { memory, mask } = kernel as Kernel;
  // BLOCK is a multiple of 4, so every block starts at the same key phase.
  for (let done = 0; done < length; done += BLOCK) {
    const n = Math.min(BLOCK, length - done);
    memory.set(source.subarray(sourceStart + done, sourceStart + done + n), 0);
    mask(n, key);
    target.set(memory.subarray(0, n), targetStart + done);
  }
}
