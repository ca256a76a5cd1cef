//! COVG attestation calls (FIDs 6-10): the capabilities, reading every
//! measurement register, extending a runtime one, and every argument error
//! of the spec's tables (each must change nothing).

use cove_abi::covg::{AttestationCapabilities, CovgFunction as F, UNMAPPED_TCG_PCR};
use cove_abi::measurement as rules;
use measurement::{Backend, Measurement};

use super::*;

const PAGE: u64 = 4096;

/// Two confidential pages for the calls' buffers.
#[repr(C, align(4096))]
struct Bufs([u8; 2 * PAGE as usize]);
static mut BUFS: Bufs = Bufs([0; 2 * PAGE as usize]);

fn buf(k: u64) -> u64 {
    (&raw mut BUFS) as u64 + k * PAGE
}

fn call(f: F, a0: u64, a1: u64, a2: u64) -> Ret {
    ecall(EID_COVG, f.fid(), [a0, a1, a2, 0, 0, 0])
}

fn read_bytes<const N: usize>(addr: u64) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        // SAFETY: inside BUFS (callers pass its pages).
        *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
    }
    out
}

fn write_bytes(addr: u64, data: &[u8]) {
    for (i, b) in data.iter().enumerate() {
        // SAFETY: inside BUFS.
        unsafe { core::ptr::write_volatile((addr + i as u64) as *mut u8, *b) };
    }
}

/// Touches the buffer pages (the host adds them on the first fault).
fn touch() {
    for k in 0..2 {
        wr(buf(k), 0);
    }
}

fn register(index: u64) -> Result<[u8; 48], Reason> {
    let r = call(F::ReadMeasurement, buf(1), PAGE, index);
    ensure!(r.error == 0, "read_measurement({index}): error {}", r.error);
    Ok(read_bytes::<48>(buf(1)))
}

fn test_attcaps() -> TestResult {
    touch();
    let r = call(F::GetAttcaps, buf(0), PAGE, 0);
    ensure!(r.error == 0, "get_attcaps: error {}", r.error);
    let raw = read_bytes::<{ AttestationCapabilities::SIZE }>(buf(0));
    let c = AttestationCapabilities::from_bytes(&raw).unwrap_or_default();
    ensure!(
        c.hash_algorithm == rules::HASH_ALGORITHM as u32
            && c.initial_measurements == rules::INITIAL_REGISTERS
            && c.runtime_measurements == rules::RUNTIME_REGISTERS
            && c.certificate_formats == 0
            && c.tcb_svn != 0,
        "capabilities: svn {} hash {} formats {:#x} initial {} runtime {}",
        c.tcb_svn,
        c.hash_algorithm,
        c.certificate_formats,
        c.initial_measurements,
        c.runtime_measurements
    );
    let n = (rules::INITIAL_REGISTERS + rules::RUNTIME_REGISTERS) as usize;
    for (i, d) in c.msmt_regs.iter().enumerate() {
        let want_type = u32::from(i >= rules::INITIAL_REGISTERS as usize);
        let described = d.hash_algorithm == rules::HASH_ALGORITHM as u32
            && d.measurement_type == want_type
            && d.tcg_pcr_index == UNMAPPED_TCG_PCR;
        let empty = *d == Default::default();
        ensure!(
            if i < n { described } else { empty },
            "descriptor {i}: hash {} type {} pcr {:#x}",
            d.hash_algorithm,
            d.measurement_type,
            d.tcg_pcr_index
        );
    }
    for (addr, size, want, what) in [
        (buf(0) + 8, PAGE, ERR_INVALID_ADDRESS, "an unaligned buffer"),
        (
            buf(0),
            100,
            ERR_INVALID_PARAM,
            "a size that is not whole pages",
        ),
        (buf(0), 0, ERR_INVALID_PARAM, "size 0"),
        (CONSOLE_GPA, PAGE, ERR_INVALID_PARAM, "a shared page"),
        (
            MMIO_GPA,
            PAGE,
            ERR_INVALID_PARAM,
            "a GPA outside confidential memory",
        ),
    ] {
        let r = call(F::GetAttcaps, addr, size, 0);
        ensure!(
            r.error == want,
            "get_attcaps with {what}: error {}, want {want}",
            r.error
        );
    }
    Ok(())
}

fn test_measurements(arg: u64) -> TestResult {
    touch();
    let initial = register(rules::TVM_INITIAL_INDEX)?;
    ensure!(initial != [0; 48], "the initial measurement is all zero");
    // The configuration register: guestvm's one region and its vCPUs.
    let vcpus = if arg & ARG_HAS_VCPU1 != 0 { 2 } else { 1 };
    let mut want = Measurement::new(Backend::Portable);
    want.extend_config([(REGION_GPA, REGION_LEN)].into_iter(), vcpus, None);
    let config = register(rules::TVM_CONFIG_INDEX)?;
    ensure!(
        config == *want.value(),
        "the configuration register is not ({REGION_GPA:#x}, {REGION_LEN:#x}) and {vcpus} vCPU(s)"
    );
    for i in rules::RUNTIME_FIRST_INDEX..=rules::RUNTIME_LAST_INDEX {
        ensure!(
            register(i)? == [0; 48],
            "runtime register {i} is not zero at start"
        );
    }
    for (addr, size, index, want, what) in [
        (
            buf(1),
            PAGE,
            rules::RUNTIME_LAST_INDEX + 1,
            ERR_INVALID_PARAM,
            "an index past the last",
        ),
        (buf(1), 47, 0, ERR_INVALID_PARAM, "47 bytes"),
        (
            buf(1) + 8,
            PAGE,
            0,
            ERR_INVALID_ADDRESS,
            "an unaligned buffer",
        ),
        (CONSOLE_GPA, PAGE, 0, ERR_INVALID_PARAM, "a shared page"),
        (
            MMIO_GPA,
            PAGE,
            0,
            ERR_INVALID_PARAM,
            "a GPA outside confidential memory",
        ),
    ] {
        let r = call(F::ReadMeasurement, addr, size, index);
        ensure!(
            r.error == want,
            "read_measurement with {what}: error {}, want {want}",
            r.error
        );
    }
    Ok(())
}

fn test_extend() -> TestResult {
    touch();
    let digest: [u8; 48] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ 0x5a);
    write_bytes(buf(0), &digest);
    let index = rules::RUNTIME_FIRST_INDEX + 1;
    let before = register(index)?;
    // Every error changes nothing.
    for (addr, len, idx, want, what) in [
        (
            buf(0),
            48,
            rules::TVM_INITIAL_INDEX,
            ERR_INVALID_PARAM,
            "the initial register",
        ),
        (
            buf(0),
            48,
            rules::TVM_CONFIG_INDEX,
            ERR_INVALID_PARAM,
            "the configuration register",
        ),
        (
            buf(0),
            48,
            rules::RUNTIME_LAST_INDEX + 1,
            ERR_INVALID_PARAM,
            "an index past the last",
        ),
        (buf(0), 32, index, ERR_INVALID_PARAM, "a 32-byte digest"),
        (
            buf(0) + 8,
            48,
            index,
            ERR_INVALID_ADDRESS,
            "an unaligned digest",
        ),
        (
            CONSOLE_GPA,
            48,
            index,
            ERR_INVALID_ADDRESS,
            "a digest in shared memory",
        ),
        (
            MMIO_GPA,
            48,
            index,
            ERR_INVALID_ADDRESS,
            "a digest outside confidential memory",
        ),
    ] {
        let r = call(F::ExtendMeasurement, addr, len, idx);
        ensure!(
            r.error == want,
            "extend_measurement with {what}: error {}, want {want}",
            r.error
        );
    }
    ensure!(
        register(index)? == before,
        "a refused extend changed the register"
    );
    let r = call(F::ExtendMeasurement, buf(0), 48, index);
    ensure!(r.error == 0, "extend_measurement: error {}", r.error);
    let mut want = Measurement::from_value(before, Backend::Portable);
    want.extend(&digest);
    ensure!(
        register(index)? == *want.value(),
        "the register is not SHA-384(old || digest)"
    );
    // Only that register moved.
    for i in rules::RUNTIME_FIRST_INDEX..=rules::RUNTIME_LAST_INDEX {
        if i != index {
            ensure!(register(i)? == [0; 48], "runtime register {i} changed too");
        }
    }
    Ok(())
}

fn test_not_offered() -> TestResult {
    touch();
    let r = ecall(
        EID_COVG,
        F::GetEvidence.fid(),
        [buf(0), 32, buf(1), 1, buf(1), PAGE],
    );
    ensure!(
        r.error == ERR_NOT_SUPPORTED,
        "get_evidence: error {}",
        r.error
    );
    let r = call(F::RetrieveSecret, buf(0), PAGE, 0);
    ensure!(
        r.error == ERR_NOT_SUPPORTED,
        "retrieve_secret: error {}",
        r.error
    );
    Ok(())
}

pub fn run(t: &mut Tally, arg: u64) {
    run_test(t, "attest_caps", test_attcaps);
    run_test(t, "attest_measurements", || test_measurements(arg));
    run_test(t, "attest_extend", test_extend);
    run_test(t, "attest_not_offered", test_not_offered);
}
