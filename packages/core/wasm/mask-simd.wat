;; The masking kernel of packages/core/src/protocol/mask-kernel.ts (RFC 6455 §5.3):
;; XORs the first $len bytes of memory with a 4-byte key, 64 bytes per iteration with
;; 128-bit SIMD, then byte by byte. $key holds the mask bytes in little-endian order
;; (byte 0 of the data is XORed with the low byte), as WebAssembly memory is little-endian.
;; mask-kernel.ts embeds the compiled bytes; packages/core/test/mask-kernel.test.ts
;; compiles this file with wabt and checks that they match.
(module
  (memory (export "memory") 1)
  (func (export "mask") (param $len i32) (param $key i32)
    (local $i i32) (local $v v128) (local $end i32)
    (local.set $v (i32x4.splat (local.get $key)))
    (local.set $end (i32.and (local.get $len) (i32.const -64)))
    (block $wide_done
      (loop $wide
        (br_if $wide_done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (local.get $i) (v128.xor (v128.load (local.get $i)) (local.get $v)))
        (v128.store offset=16 (local.get $i) (v128.xor (v128.load offset=16 (local.get $i)) (local.get $v)))
        (v128.store offset=32 (local.get $i) (v128.xor (v128.load offset=32 (local.get $i)) (local.get $v)))
        (v128.store offset=48 (local.get $i) (v128.xor (v128.load offset=48 (local.get $i)) (local.get $v)))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br $wide)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (local.get $i)
          (i32.xor (i32.load8_u (local.get $i))
            (i32.shr_u (local.get $key) (i32.shl (i32.and (local.get $i) (i32.const 3)) (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))))
