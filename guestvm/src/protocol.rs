//! The private protocol between guestvm (the TVM) and tellus (the host that
//! runs it). This one file is compiled into both: guestvm as a module,
//! tellus through `#[path = "../../guestvm/src/protocol.rs"]`.
//!
//! Nothing here is CoVE ABI: it is how the test guest and the test host
//! agree on the guest-physical layout, the boot argument and a few
//! host-emulated checks.
#![allow(dead_code)]

// ---- guest-physical layout -------------------------------------------------

/// Where guestvm is linked and loaded (measured 4 KiB pages from here).
pub const IMAGE_GPA: u64 = 0x8000_0000;
/// Most of the image (text, data, bss and stack) must fit below this.
pub const IMAGE_MAX: u64 = 0x20_0000;
/// The one confidential memory region the host declares.
pub const REGION_GPA: u64 = 0x8000_0000;
pub const REGION_LEN: u64 = 0x80_0000;
/// A 2 MiB page the host adds as one measured 2 MiB page (page type 1),
/// filled with `pattern(MEASURED_2M_SEED, i)` for u64 index `i`.
pub const MEASURED_2M_GPA: u64 = 0x8020_0000;
pub const MEASURED_2M_SEED: u64 = 0x2a2a_0002;
/// A 2 MiB range the host backs with one 2 MiB zero page on the first
/// fault anywhere inside it.
pub const ZERO_2M_GPA: u64 = 0x8040_0000;
/// Demand-zero 4 KiB pages (the host adds 4 KiB zero pages on faults).
pub const ZERO_4K_GPA: u64 = 0x8060_0000;
pub const ZERO_4K_PAGES: u64 = 8;
/// The page guestvm shares with the host for its console output (stays
/// shared until the TVM is destroyed).
pub const CONSOLE_GPA: u64 = 0x807e_0000;
/// The page guestvm shares with the host for the data exchange, then
/// unshares (unpopulated until shared).
pub const SHARED_GPA: u64 = 0x807f_0000;
pub const SHARED_LEN: u64 = 0x1000;
/// u64 words the guest writes (words `0..HALF_WORDS`) and the host writes
/// back (words `HALF_WORDS..2 * HALF_WORDS`) in the exchange page.
pub const HALF_WORDS: u64 = 128;
/// The emulated MMIO page (outside every confidential region).
pub const MMIO_GPA: u64 = 0x1000_0000;
pub const MMIO_LEN: u64 = 0x1000;

pub const SIZE_2M: u64 = 0x20_0000;

/// COVI: vCPU k's IMSIC page is `IMSIC_GPA + k * 4 KiB` (init_tvm_aia with
/// one hart index bit, no guest bits, group shift 24).
pub const IMSIC_GPA: u64 = 0x2800_0000;
pub const IMSIC_HART_BITS: u32 = 1;
/// Interrupt ids the COVI tests use: one the guest allows, one it denies,
/// one it sends itself, one it sends to vCPU 1 while that is unbound.
pub const COVI_ALLOWED_ID: u64 = 5;
pub const COVI_DENIED_ID: u64 = 6;
pub const COVI_SELF_ID: u64 = 7;
pub const COVI_VCPU1_ID: u64 = 9;

// ---- entry_arg (a1 of the boot vCPU) ---------------------------------------

/// The host found V on its hart: guestvm runs its vector test.
pub const ARG_HAS_V: u64 = 1 << 0;
/// Bench: loop `ARG_ITERS` forwarded `FID_NOP` ecalls, then shut down.
pub const ARG_BENCH_ECALL: u64 = 1 << 1;
/// Bench: the very first instructions make a forwarded SRST (first exit).
pub const ARG_FIRST_EXIT: u64 = 1 << 2;
/// The 2 MiB measured page is present (the host added it).
pub const ARG_HAS_2M: u64 = 1 << 3;
/// What guestvm leaves in every FP and vector register at its first exit.
pub const GUEST_REG_PATTERN: u64 = 0x6775_6573_7452_4547; // "GEGRtseug"

/// The host created vCPU 1 and will run it when vCPU 0 starts it (HSM).
pub const ARG_HAS_VCPU1: u64 = 1 << 4;
/// Bench: vCPU 0 starts vCPU 1 (`ARG_HAS_VCPU1` must be set too) and the
/// two ping-pong `ARG_ITERS` SBI IPIs (served by the TSM; the host is not
/// involved while they do), then vCPU 0 reports the time with
/// `FID_BENCH_RESULT` and shuts down.
pub const ARG_BENCH_IPI: u64 = 1 << 5;
/// The host's device tree says Zawrs / Zicboz / Sstc (guestvm then expects
/// `wrs.*` / `cbo.zero` / `stimecmp` to work in the TVM as in S-mode).
pub const ARG_HAS_ZAWRS: u64 = 1 << 6;
pub const ARG_HAS_ZICBOZ: u64 = 1 << 7;
pub const ARG_HAS_SSTC: u64 = 1 << 8;
/// COVI mode: the host gave the TVM AIA (`IMSIC_GPA` layout) and bound
/// vCPU 0 to a guest file on the hart it runs on; guestvm runs its IMSIC
/// tests instead of the others.
pub const ARG_COVI: u64 = 1 << 9;
/// Iteration count for `ARG_BENCH_ECALL` and `ARG_BENCH_IPI`, in bits 32..63.
pub const ARG_ITERS_SHIFT: u32 = 32;

// ---- forwarded host calls (experimental SBI EID space) --------------------

/// "GV" in the SBI experimental range 0x0800_0000..=0x08ff_ffff.
pub const EID_GVM: u64 = 0x0800_4756;
/// No-op; returns 0. Used by the round-trip benchmark.
pub const FID_NOP: u64 = 0;
/// a0 = seed. The guest wrote `pattern(seed, i)` into words
/// `0..HALF_WORDS` of the exchange page; the host checks them and writes
/// `pattern(!seed, i)` into words `HALF_WORDS..2 * HALF_WORDS`. Returns
/// error 0, value = mismatches.
pub const FID_SHARED_CHECK: u64 = 1;
/// a0 = seed. After unsharing, the guest wrote `pattern(seed, i)` into
/// words `0..HALF_WORDS` of the (now confidential) page at `SHARED_GPA`; the host
/// checks that its old shared page does not show it. Returns value =
/// number of u64 words of the host page equal to the guest's pattern.
pub const FID_UNSHARED_CHECK: u64 = 2;
/// Returns value = MMIO stores the host saw that matched
/// `mmio_store_value`, error = -1 if any store did not match.
pub const FID_MMIO_STORES: u64 = 3;
/// `ARG_BENCH_IPI`'s result: a0 = `time` ticks the timed round trips took
/// in all, a1 = how many there were, a2 = failed SBI calls (0). Returns 0.
pub const FID_BENCH_RESULT: u64 = 4;
/// COVI: a0 = interrupt id; the host calls inject_tvm_cpu(vCPU 0, id) and
/// returns its SBI error (as u64) in value.
pub const FID_COVI_INJECT: u64 = 5;
/// COVI: the host binds vCPU 1 to a guest file on the hart it runs vCPUs
/// on; value = the SBI error of bind_aia_imsic.
pub const FID_COVI_BIND_VCPU1: u64 = 6;
/// COVI wake-up (Salus extension): vCPU 0 just sent `COVI_WAKE_ID` to the
/// stopped vCPU 1's file; the host checks that Salus woke it (its wake MSI
/// in the host's own file, vCPU 1's file among take_wake's). value = 0 if
/// so, else what it saw (`mask << 32 | msi`).
pub const FID_COVI_WAKE_CHECK: u64 = 7;
pub const COVI_WAKE_ID: u64 = 11;
/// COVI: the host moves vCPU 0 (running, bound to a file of the boot hart)
/// to a file of another hart: rebind_begin there, inject
/// `COVI_ALLOWED_ID`, tvm_fence, rebind_clone here, inject `COVI_DENIED_ID`
/// (which the guest allowed by then), rebind_end there; vCPU 0 runs there
/// from now on. value = 0, or the first failing call's error; error
/// NOT_SUPPORTED with one hart.
pub const FID_COVI_REBIND: u64 = 8;
/// The id the host asks Salus to send its own file on a wake.
pub const COVI_HOST_WAKE_MSI: u64 = 40;

// ---- value generators -------------------------------------------------------

/// A reproducible 64-bit pattern (splitmix64 of seed and index).
pub const fn pattern(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(0x6a09_e667_f3bc_c908);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The raw 64-bit value behind MMIO offset `off` for loads; a load of
/// `width` bytes returns the low `width` bytes of it (sign- or
/// zero-extended as the instruction requires).
pub const fn mmio_load_value(off: u64) -> u64 {
    0x8877_6655_f3f2_f1f0 ^ off.wrapping_mul(0x0101_0101_0101_0101)
}

/// The value guestvm stores at MMIO offset `off` (truncated to the width).
pub const fn mmio_store_value(off: u64) -> u64 {
    0x1234_5678_9abc_def0 ^ off.wrapping_mul(0x0001_0001_0001_0001)
}

/// Truncates `v` to `width` bytes.
pub const fn truncate(v: u64, width: u64) -> u64 {
    if width >= 8 {
        v
    } else {
        v & ((1u64 << (8 * width)) - 1)
    }
}

/// Sign-extends the low `width` bytes of `v`.
pub const fn sign_extend(v: u64, width: u64) -> u64 {
    if width >= 8 {
        v
    } else {
        let shift = 64 - 8 * width;
        (((v << shift) as i64) >> shift) as u64
    }
}
